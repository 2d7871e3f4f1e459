"""Declared settings: each config key is one dataclass field (``setting``) holding its
default, its rule (a test and the words for what it allows), an example and its meaning.
The dataclasses are Hydra structured configs; ``checks.check_config`` checks every declared
rule in one pass and docs/configuration.md lists them."""

from __future__ import annotations

import dataclasses
import typing
from typing import Callable, Iterator

#: (test of a value, what it allows in words)
Rule = tuple[Callable[[object], bool], str]
#: (rule, an example of a good value)
Check = tuple[Rule, str]


def int_at_least(low: int) -> Rule:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low), f"an integer >= {low}"


def number_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Rule:
    def ok(v) -> bool:
        return (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and (low < v if low_open else low <= v)
            and (v < high if high_open else v <= high)
        )

    return ok, f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def one_of(*values) -> Rule:
    return (lambda v: v in values and type(v) in {type(x) for x in values}), "one of " + ", ".join(
        str(v).lower() if isinstance(v, bool) else str(v) for v in values
    )


def subset_of(*values: str) -> Rule:
    return (lambda v: isinstance(v, list) and set(v) <= set(values)), "a list of any of " + ", ".join(values)


def list_of(rule: Rule) -> Rule:
    """A non-empty list whose every item obeys ``rule``."""
    return (
        lambda v: isinstance(v, list) and bool(v) and all(rule[0](x) for x in v)
    ), f"a non-empty list, each {rule[1]}"


def or_null(rule: Rule) -> Rule:
    return (lambda v: v is None or rule[0](v)), rule[1] + " or null"


def setting(default: object = None, rule: Rule | None = None, example: str = "", help: str = "", factory=None):
    """One key of a structured config: its default, rule, an example of a good value and
    what it means, declared once in the dataclass of the group it belongs to."""
    metadata = {"rule": rule, "example": example, "help": help}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declared(schema: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field]]:
    """(dotted key, field) of every setting of ``schema``, nested dataclasses walked."""
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            yield from declared(hints[f.name], key + ".")
        else:
            yield key, f


def declared_checks(schema: type, prefix: str = "") -> dict[str, Check]:
    """key -> (rule, example) of every setting of ``schema`` that declares a rule."""
    return {
        key: (f.metadata["rule"], f.metadata["example"])
        for key, f in declared(schema, prefix)
        if f.metadata.get("rule")
    }


def configure(schema: type, given=None) -> object:
    """An instance of ``schema``: its declared defaults with ``given`` (a mapping or a config
    node, resolved) on top, each value converted to its declared type or refused."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(given, DictConfig):
        given = OmegaConf.to_container(given, resolve=True)
    if dataclasses.is_dataclass(given):
        return given
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), given or {}))
