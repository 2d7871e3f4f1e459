"""Score a folder of synthetic images against a folder of real ones.

    python -m fetal_dcgan.evaluate --real DIR --fake DIR [--metrics fid kid psnr mi lbp]
                                   [--resize 64] [--out scores.json]
    python -m fetal_dcgan.evaluate --sets sets.csv [--out scores.csv]

The metrics and their settings are training's (``conf/metrics``, composed as training
composes it), so a folder scores as a run's snapshot would; options override them. Prints a
table and, with ``--out``, writes JSON: every set-level value, every declared set vector
(the LBP vectors), per-image values keyed by file name, and a status per metric. With
``--sets``, every set of a manifest (``data.manifest``; docs/study.md) is scored once,
cached by content, and ``--out`` is a CSV with one row a set. A metric that fails is one
status line; its traceback goes to the log file beside ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from fetal_dcgan.data.preprocess import FIT_MODES, preprocessing, read_image_set
from fetal_dcgan.data.sources import folder_images
from fetal_dcgan.errors import UserError, cli_status
from fetal_dcgan.metrics import METRICS, MetricsResult, MetricSuite
from fetal_dcgan.metrics.registry import key_names
from fetal_dcgan.runs import run_setting
from fetal_dcgan.utils import atomic_write_text, default_cache_dir


def _json_value(value):
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value.item() if isinstance(value, np.generic) else value


def result_to_json(result: MetricsResult, fake_files: list[Path] | None = None) -> dict:
    """A JSON-ready dict; NaN becomes null and infinity the string "inf"."""
    out = {k: _json_value(v) for k, v in result.scalars.items()}
    for key in [k.removesuffix("_ci_low") for k in result.scalars if k.endswith("_ci_low")]:
        out[f"{key}_ci"] = [out[f"{key}_ci_low"], out[f"{key}_ci_high"]]
    out.update({k: _json_value(result.vectors[k]) for k in key_names(level="vector") if k in result.vectors})
    out["per_image"] = {k: _json_value(v) for k, v in result.per_image.items()}
    if fake_files is not None:
        out["per_image"]["file"] = [p.name for p in fake_files]
    out["status"] = dict(result.status)
    return out


def format_table(result: MetricsResult) -> str:
    """Set-level values, one per line, then each metric's status."""
    lines = [
        f"{key:<22} {value:.6g}" if isinstance(value, float) else f"{key:<22} {value}"
        for key, value in result.scalars.items()
    ]
    lines += [f"{'status ' + name:<22} {text}" for name, text in result.status.items()]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fetal_dcgan.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, default=None, help="folder of real (reference) images")
    parser.add_argument("--fake", type=Path, default=None, help="folder of synthetic images")
    parser.add_argument(
        "--sets",
        type=Path,
        default=None,
        help="instead of --real/--fake: a manifest of sets from any generator (CSV or YAML; docs/study.md)",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        default=None,
        help=f"any of {' '.join(METRICS)} and those of --modules (default: training's metrics.names, "
        "conf/metrics/default.yaml)",
    )
    parser.add_argument(
        "--modules", nargs="+", default=None, help="modules that register metrics of their own (metrics.modules)"
    )
    parser.add_argument(
        "--train", type=Path, default=None, help="folder of the training images, for the memorisation audit"
    )
    parser.add_argument(
        "--resize",
        type=int,
        default=None,
        help="fit every image into SIZE x SIZE first (default: the run's data.image_size when --fake "
        "is a run's sample set; otherwise sizes must already match)",
    )
    parser.add_argument(
        "--fit",
        choices=FIT_MODES,
        default=None,
        help="how --resize fits non-square images (default: the run's data.fit when --fake is a "
        "run's sample set, else pad)",
    )
    parser.add_argument(
        "--anatomy-model",
        default=None,
        help="folder of a head-measurement model for the anatomy metric (default: the newest in the "
        "cache for the images' size; python -m fetal_dcgan.anatomy train makes one)",
    )
    parser.add_argument("--fid-weights", default=None, help="local path of the FID Inception weights file")
    parser.add_argument(
        "--device",
        default=None,
        help="where the metrics run: auto, cpu, cuda (default: training's metrics.device, auto)",
    )
    parser.add_argument("--kid-subsets", type=int, default=None, help="default: metrics.kid.subsets")
    parser.add_argument(
        "--kid-subset-size",
        type=int,
        default=None,
        help="default: metrics.kid.subset_size (half the smaller set, at most 1000)",
    )
    parser.add_argument(
        "--ci-resamples",
        type=int,
        default=None,
        help="bootstrap resamples (default: metrics.ci_resamples; 0: no intervals)",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="cache reference statistics here (default: the training cache, $FETAL_DCGAN_CACHE)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the scores as JSON to this file")
    args = parser.parse_args(argv)
    if (args.sets is None) == (args.real is None or args.fake is None):
        parser.error("give --real and --fake, or --sets MANIFEST")
    return args


def evaluate_sets(args: argparse.Namespace) -> pd.DataFrame:
    """Every set of the manifest scored (or read from the cache), one row a set."""
    from fetal_dcgan.report.sets import score_manifest_file

    table = score_manifest_file(args.sets, lambda: metric_suite(args), args.cache_dir or default_cache_dir()).results
    shown = ["run", "epoch", *[k for k in key_names(role="score") if k in table and table[k].notna().any()]]
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out is not None:
        atomic_write_text(table.to_csv(index=False), args.out)
        print(f"wrote {args.out}")
    return table


def evaluate(args: argparse.Namespace) -> dict:
    if args.sets is not None:
        return {"sets": evaluate_sets(args)}
    if args.resize is not None and args.resize < 1:
        raise UserError(f"--resize {args.resize}: give a positive size in pixels, e.g. --resize 64.")
    suite = metric_suite(args)  # bad options fail before any image is read
    real_files, fake_files = folder_images(args.real), folder_images(args.fake)
    fit, size, resize, source = preprocessing([args.fake], args.fit, args.resize)
    if source != "as given":
        print(f"Real images fitted to {size} px with fit={fit}, resize={resize}, {source}.")
    real = read_image_set(real_files, size, fit, resize=resize)
    fake = read_image_set(fake_files, size, fit, resize=resize)
    if real.shape[-2:] != fake.shape[-2:]:
        raise UserError(
            f"Real images are {real.shape[-1]}x{real.shape[-2]} but synthetic ones are "
            f"{fake.shape[-1]}x{fake.shape[-2]}: pass --resize SIZE to fit both to one size."
        )
    train = None
    if args.train is not None:
        train = read_image_set(folder_images(args.train), size or fake.shape[-1], fit, resize=resize)
    result = suite.score(fake, real, train)
    print(format_table(result))
    payload = result_to_json(result, fake_files)
    if args.out is not None:
        atomic_write_text(json.dumps(payload, indent=1), args.out)
        print(f"wrote {args.out}")
        for figure in suite.figures(
            fake, train, result, lambda name: args.out.with_name(f"{args.out.stem}_{name}.png")
        ):
            print(f"wrote {figure}")
    return payload


def metric_suite(args: argparse.Namespace) -> MetricSuite:
    """Training's metric suite (``conf/metrics``) with the command line's options on top."""
    from fetal_dcgan.pipeline import configured_suite

    options = {
        "metrics.names": args.metrics,
        "metrics.modules": args.modules,
        "metrics.features.weights_path": args.fid_weights and str(args.fid_weights),
        "metrics.device": args.device,
        "metrics.kid.subsets": args.kid_subsets,
        "metrics.kid.subset_size": args.kid_subset_size,
        "metrics.ci_resamples": args.ci_resamples,
        "paths.cache_dir": args.cache_dir and str(args.cache_dir),
        "metrics.anatomy.model_path": args.anatomy_model and str(args.anatomy_model),
        # the memorisation audit checks the rotations this run trained with, and the anatomy
        # metric prefers a measurement model of the run's data and fit
        "data.augment.degrees": args.fake and run_setting(args.fake, "data.augment.degrees"),
        "data.fit": args.fit or (args.fake and run_setting(args.fake, "data.fit")),
        "metrics.anatomy.source": args.fake and run_setting(args.fake, "data.source"),
    }
    return configured_suite(options)


class _OneLine(logging.Formatter):
    """A log record as its first line: a failing metric's traceback stays in the log file."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage().splitlines()[0]}"


@contextmanager
def _logging(out: Path | None):
    """Warnings and errors as one line each on the terminal; everything, tracebacks included,
    in ``<out>.log``. Removed again afterwards, so a caller's logging is left as it was."""
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(_OneLine())
    handlers: list[logging.Handler] = [console]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(out.with_suffix(".log"), mode="w"))
        handlers[-1].setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with _logging(args.out):
        return cli_status(lambda: evaluate(args))


if __name__ == "__main__":
    sys.exit(main())
