"""Every metric declared once: its output keys, what each key means, and how it is computed.

A metric is one module that calls ``register_metric`` with its keys (as NVlabs'
stylegan2-ada ``@register_metric``; torch-fidelity exports its result keys as constants).
The rest of the project reads the declarations instead of naming keys: ``metrics.csv``
columns and TensorBoard tags, the report's tables, statistics and figures, ``evaluate``'s
JSON, the survey analysis and the key table in ``docs/metrics.md``
(``python -m fetal_dcgan.metrics.registry`` prints it). Metrics outside the package
register the same way from a module named in ``metrics.modules``.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

from fetal_dcgan.rules import configure, number_in, setting

if TYPE_CHECKING:
    from fetal_dcgan.metrics.context import ScoringContext

Level = Literal["set", "image", "vector", "image-vector"]
Role = Literal["score", "interval", "reference", "diagnostic"]


@dataclass(frozen=True)
class Key:
    """One output of a metric.

    ``level``: ``set`` (a column of metrics.csv), ``image`` (a column of per_image.csv, one
    value per synthetic image), ``vector`` (one array per set, in the snapshot's .npz and
    evaluate's JSON) or ``image-vector`` (one array per image, .npz only). ``role``:
    ``score`` measures the synthetic set (tested across the sweep's factors, tabled, and
    drawn when ``plotted``); ``interval`` is a bound of a score's bootstrap CI;
    ``reference`` describes the reference or training set, or a calibration; ``diagnostic``
    is kept for a person to look at (an index, a spread). ``better``: lower, higher, or
    ``reference`` (closest to the value of ``reference_key``, the key that holds the
    reference set's value of the same quantity, drawn beside it). ``bounds``: the values
    the key cannot pass (None: unbounded); a study's verdict never calls levels that sit
    at a bound "equivalent" (``report.verdicts``).
    """

    name: str
    description: str
    level: Level = "set"
    role: Role = "score"
    better: Literal["lower", "higher", "reference"] | None = None
    unit: str = ""
    plotted: bool = False
    reference_key: str | None = None
    bounds: tuple[float | None, float | None] = (None, None)


def ci_share(default: float = 1.0):
    """The share of ``metrics.ci_resamples`` a metric's bootstrap intervals take."""
    return setting(default, number_in(0, 1), "0.25", "share of metrics.ci_resamples its intervals take (0: none)")


@dataclass
class MetricOptions:
    """The options of a metric that declares none of its own."""

    ci_share: float = ci_share(1.0)


#: ``figure(fake, train, result, path) -> path or None``: a picture of a scored set's result.
Figure = Callable[..., object]


@dataclass(frozen=True)
class Metric:
    name: str
    summary: str
    keys: tuple[Key, ...]
    compute: Callable[["ScoringContext"], dict]
    figures: tuple[tuple[str, Figure], ...] = ()  # (file-name part, draw) of each picture it offers
    #: a dataclass of ``rules.setting`` fields: its section of the metrics config, checked up front
    options: type = MetricOptions
    has_section: bool = False  # declared options of its own: a section of the metrics config
    default: bool = True  # run when metrics.names is left as it is

    def configure(self, given=None) -> object:
        """Its options object: the declared defaults with ``given`` on top (``rules.configure``)."""
        return configure(self.options, given)

    @property
    def headline(self) -> Key:
        """The key that stands for the metric in a one-number summary: its first plotted
        score, else its first score."""
        scores = [k for k in self.keys if k.level == "set" and k.role == "score"]
        return next((k for k in scores if k.plotted), scores[0])


#: The bounds of a share (a fraction of images) and of a distance or count.
SHARE = (0.0, 1.0)
NONNEGATIVE = (0.0, None)

#: Registered metrics by name, in the order they are run and reported.
METRICS: dict[str, Metric] = {}

#: Keys every scored set has, whichever metrics ran.
SET_SIZES = (
    Key("n_fake", "synthetic images scored", role="reference", unit="images"),
    Key("n_real", "reference images", role="reference", unit="images"),
)


def interval(name: str, unit: str = "") -> tuple[Key, Key]:
    """The two bounds of ``name``'s 95% bootstrap interval over the synthetic images."""
    return tuple(
        Key(f"{name}_ci_{side}", f"{side} bound of the 95% bootstrap interval of {name}", role="interval", unit=unit)
        for side in ("low", "high")
    )


def register_metric(
    name: str, summary: str, keys: tuple[Key, ...] | list[Key], options: type | None = None, default: bool = True
):
    """Decorator: register ``compute(ctx) -> {"scalars", "per_image", "vectors", "status"}``
    (every part optional) under ``name`` with its declared ``keys``, and its ``options``: a
    dataclass of ``fetal_dcgan.rules.setting`` fields (their rules are checked with the rest
    of the config before a run; the metric gets an instance as ``ctx.options``); ``default``:
    whether it is in the default ``metrics.names``."""
    if options is not None and not dataclasses.is_dataclass(options):
        raise TypeError(f"Metric {name!r}: options must be a dataclass of fetal_dcgan.rules.setting fields.")

    def decorate(compute: Callable[["ScoringContext"], dict]) -> Callable:
        taken = {k.name: m.name for m in METRICS.values() if m.name != name for k in m.keys}
        clash = [k.name for k in keys if k.name in taken and k.level == "set"]
        if clash:
            raise ValueError(f"Metric {name!r} declares keys already declared by another metric: {clash}.")
        METRICS[name] = Metric(
            name,
            summary,
            tuple(keys),
            compute,
            options=options or MetricOptions,
            has_section=options is not None,
            default=default,
        )
        return compute

    return decorate


def register_figure(metric: str, name: str):
    """Decorator: ``draw(fake, train, result, path)`` pictures ``metric``'s result; it is
    written beside each scored set as ``..._<name>.png`` (``RunLayout.metric_figure``)."""

    def decorate(draw: Figure) -> Figure:
        m = METRICS[metric]
        figures = tuple((n, d) for n, d in m.figures if n != name) + ((name, draw),)
        METRICS[metric] = dataclasses.replace(m, figures=figures)
        return draw

    return decorate


def load_modules(modules: list[str] | tuple[str, ...] | None) -> None:
    """Import modules that register metrics of their own (``metrics.modules``)."""
    for module in modules or ():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            from fetal_dcgan.errors import ConfigError

            raise ConfigError(
                f"metrics.modules: cannot import {module!r} ({exc}). Give an importable module "
                "name, e.g. metrics.modules=[my_metrics] with my_metrics.py on PYTHONPATH."
            ) from exc


def keys(
    names: list[str] | tuple[str, ...] | None = None,
    level: Level | None = "set",
    role: Role | tuple[Role, ...] | None = None,
) -> list[Key]:
    """Declared keys of the metrics ``names`` (default: all), in registration order."""
    roles = (role,) if isinstance(role, str) else role
    found = [*SET_SIZES] if level in (None, "set") and (roles is None or "reference" in roles) else []
    found += [k for m in METRICS.values() if names is None or m.name in names for k in m.keys]
    return [
        k for k in dict.fromkeys(found) if (level is None or k.level == level) and (roles is None or k.role in roles)
    ]


def key_names(*args, **kwargs) -> list[str]:
    return [k.name for k in keys(*args, **kwargs)]


def key(name: str) -> Key | None:
    """The declaration of a key, or None for a column no metric declares."""
    return next((k for k in keys(level=None) if k.name == name), None)


def markdown_table() -> str:
    """Every declared key as a markdown table (docs/metrics.md holds a copy; a test keeps them equal)."""
    lines = [
        "| metric | key | level | role | better | unit | range | plotted | meaning |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for metric in METRICS.values():
        for k in metric.keys:
            lines.append(
                f"| {metric.name} | `{k.name}` | {k.level} | {k.role} | {k.better or ''} | {k.unit} | {_range(k)} | "
                f"{'yes' if k.plotted else ''} | {k.description} |"
            )
    return "\n".join(lines) + "\n"


def _range(k: Key) -> str:
    low, high = k.bounds
    if low is None and high is None:
        return ""
    return f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"


if __name__ == "__main__":
    # Run as a script this file is __main__, not the registry the metrics registered with.
    from fetal_dcgan.metrics import registry

    print(registry.markdown_table(), end="")
