"""python -m fetal_dcgan.report SWEEP_DIR | --sets MANIFEST [--out DIR]
[--ratings ratings.csv [--role clinician] [--log-fit]] [--factor F --endpoints K ... --snapshot E]

python -m fetal_dcgan.report plan PILOT [--margins FILE] [--levels K]"""

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


def add_question(parser: argparse.ArgumentParser) -> None:
    """Options that replace parts of the study's declared question (``study.*`` of its runs)."""
    parser.add_argument("--factor", default=None, help="the primary factor (default: the runs' study.factor)")
    parser.add_argument(
        "--endpoints", nargs="+", default=None, help="the primary endpoints (default: the runs' study.endpoints)"
    )
    parser.add_argument(
        "--snapshot", type=int, default=None, help="the primary epoch (default: study.snapshot, else the last)"
    )


def asked(args) -> dict:
    return {k: v for k in ("factor", "endpoints", "snapshot") if (v := getattr(args, k)) is not None}


def plan_main(argv: list[str]) -> int:
    from fetal_dcgan.report.plan import plan

    parser = argparse.ArgumentParser(
        prog="python -m fetal_dcgan.report plan",
        description="Replicates per cell, and their cost, that a study's primary endpoints need, from a pilot sweep.",
    )
    parser.add_argument("pilot", help="the pilot sweep: 2+ runs (seeds) a cell")
    parser.add_argument(
        "--margins", default=None, help="margins file (default: PILOT/margins.json, measured first when missing)"
    )
    parser.add_argument("--levels", type=int, default=None, help="levels of the planned study (default: the pilot's)")
    parser.add_argument("--most", type=int, default=200, help="the largest number of replicates a level considered")
    add_question(parser)
    args = parser.parse_args(argv)

    def run() -> None:
        table, header = plan(args.pilot, args.margins, args.levels, args.most, question=asked(args))
        print(
            f"Plan from {header['pilot']}: {header['levels']} levels of {header['factor']} at epoch {header['epoch']}, "
            f"power {header['power']:g} at alpha {header['alpha_per_endpoint']:.3g} per endpoint; "
            f"a run took {header['seconds_per_run'] / 60:.2f} min in the pilot."
        )
        print(plan_table(table).to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}"))
        print(
            "r: replicates per level (to find differs at the margin; to be equivalent with no difference; to find "
            "differs if the run SD sits at its upper 95 % bound); hours: runs like the pilot's, the whole study. "
            f"Written to {header['pilot']}/plan.csv and plan.json."
        )

    return cli_status(run)


def plan_table(table):
    """The plan's columns a person reads first."""
    shown = {
        "metric": "endpoint",
        "margin": "margin",
        "margin_source": "source",
        "sd_runs": "run SD",
        "sd_ci_low": "SD low",
        "sd_ci_high": "SD high",
        "block_gain": "block gain",
        "replicates_differs": "r differs",
        "replicates_equivalent": "r equivalent",
        "replicates_differs_at_sd_high": "r (SD high)",
        "hours_differs": "hours differs",
        "note": "note",
    }
    return table.reindex(columns=list(shown)).rename(columns=shown)


def report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fetal_dcgan.report",
        description="Tables, statistics, figures and an HTML page for a sweep ('report plan PILOT': a study's size).",
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
        help="equivalence margins over the sweep's own (a pilot's margins.json, or YAML {metric: margin}; "
        "default: SWEEP/margins.json, written by python -m fetal_dcgan.baselines --margins SWEEP)",
    )
    add_question(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["plan"]:
        return plan_main(argv[1:])
    parser = report_parser()
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
            asked(args),
        ).items():
            print(f"{name:<28} {path}")

    return cli_status(run)


if __name__ == "__main__":
    sys.exit(main())
