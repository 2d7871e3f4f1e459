"""python -m fetal_dcgan.report SWEEP_DIR | --sets MANIFEST [--out DIR]
[--ratings ratings.csv [--role clinician] [--log-fit]]"""

from __future__ import annotations

import argparse
import logging
import sys

from fetal_dcgan.errors import cli_status
from fetal_dcgan.report.build import build_report
from fetal_dcgan.report.ratings import ROLES
from fetal_dcgan.utils import default_cache_dir


def scored_sets(manifest: str):
    """The manifest's sets scored with training's metric suite (cached by content)."""
    from fetal_dcgan.pipeline import configured_suite
    from fetal_dcgan.report.sets import score_manifest_file

    return score_manifest_file(manifest, configured_suite, default_cache_dir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fetal_dcgan.report", description="Tables, statistics, figures and an HTML page for a sweep."
    )
    parser.add_argument("sweep", nargs="?", help="the sweep folder (multirun/...) or a single run folder")
    parser.add_argument(
        "--sets",
        default=None,
        help="instead of a sweep: a manifest of sample sets from any generator (CSV or YAML; docs/study.md), "
        "each scored with training's metrics and cached",
    )
    parser.add_argument(
        "--out", default=None, help="output folder (default: SWEEP/report, or <manifest>-report beside --sets)"
    )
    parser.add_argument(
        "--ratings",
        default=None,
        help="CSV with one row per rating of a synthetic image: run,epoch,image,rating "
        "[,role,rater,called_real] (survey analyze writes analysis/ratings.csv)",
    )
    parser.add_argument(
        "--role",
        default="all",
        choices=ROLES,
        help="use only the ratings of raters of this role (the paper used the clinician's)",
    )
    parser.add_argument(
        "--log-fit", action="store_true", help="also fit metric = a ln(rating) + b, the paper's Fig. 2 regression"
    )
    parser.add_argument(
        "--resamples", type=int, default=200, help="bootstrap resamples for the CIs of Cliff's delta over images"
    )
    parser.add_argument(
        "--margins",
        default=None,
        help="equivalence margins (default: SWEEP/margins.json, written by python -m "
        "fetal_dcgan.baselines --margins SWEEP)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("tensorboard").setLevel(logging.WARNING)

    if (args.sweep is None) == (args.sets is None):
        parser.error("give a sweep folder or --sets MANIFEST (one of them)")

    def run() -> None:
        for name, path in build_report(
            args.sweep or scored_sets(args.sets),
            args.out,
            args.ratings,
            args.role,
            args.log_fit,
            args.resamples,
            args.margins,
        ).items():
            print(f"{name:<28} {path}")

    return cli_status(run)


if __name__ == "__main__":
    sys.exit(main())
