"""python -m fetal_dcgan.report SWEEP_DIR [--out DIR] [--ratings ratings.csv]"""

from __future__ import annotations

import argparse
import logging
import sys

from fetal_dcgan.errors import cli_status
from fetal_dcgan.report.build import build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fetal_dcgan.report",
                                     description="Tables, statistics, figures and an HTML page for a sweep.")
    parser.add_argument("sweep", help="the sweep folder (multirun/...) or a single run folder")
    parser.add_argument("--out", default=None, help="output folder (default: SWEEP/report)")
    parser.add_argument("--ratings", default=None,
                        help="CSV with columns run,epoch,image,rating (mean rating of each rated synthetic image)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("tensorboard").setLevel(logging.WARNING)
    def run() -> None:
        for name, path in build_report(args.sweep, args.out, args.ratings).items():
            print(f"{name:<28} {path}")

    return cli_status(run)


if __name__ == "__main__":
    sys.exit(main())
