"""python -m fetal_dcgan.survey {build,serve,invite,analyze,mrmc} ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fetal_dcgan.errors import UserError, cli_status
from fetal_dcgan.report.ratings import ROLES
from fetal_dcgan.survey.deck import DECK_DESIGNS
from fetal_dcgan.survey.layout import StudyLayout
from fetal_dcgan.survey.storage import Storage


def serve(study: Path, host: str, port: int, open_registration: bool = False, threads: int = 8) -> None:
    """The rating site on waitress, a production WSGI server (TLS: a reverse proxy in front)."""
    import waitress

    from fetal_dcgan.survey.app import create_app

    app = create_app(study, open_registration)
    joining = "anyone with this URL" if open_registration else "the links of python -m fetal_dcgan.survey invite"
    print(f"Raters: http://{host}:{port}/ ({joining})")
    print(f"Admin:  http://{host}:{port}/admin (sign in with the token in {StudyLayout(study).admin_token})")
    print("Ctrl-C stops the server; every answer is already saved.", flush=True)
    waitress.serve(app, host=host, port=port, threads=threads, ident="fetal_dcgan survey")


def survey_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fetal_dcgan.survey")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="sample, blind and copy a deck into a new study folder")
    build.add_argument(
        "--real",
        type=Path,
        default=None,
        help="folder of real images (default: a --fake manifest's `real`, else the runs' own held-out reference "
        "images, listed in each run's reference.txt)",
    )
    build.add_argument(
        "--fake",
        required=True,
        type=Path,
        action="append",
        help="a sample set (samples/epoch=NNNN), a run or a sweep folder, or a manifest of sets "
        "(CSV or YAML, docs/study.md); repeatable",
    )
    build.add_argument("--n-real", type=int, default=34)
    build.add_argument("--n-fake", type=int, default=34)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument(
        "--fit",
        default=None,
        choices=("pad", "crop", "squash"),
        help="how real images are fitted to the synthetic images' size (default: the runs' "
        "data.fit from their config.yaml; pad for folders that are not runs)",
    )
    build.add_argument(
        "--config",
        type=Path,
        default=None,
        help="config.yaml of the run the synthetic images come from, when --fake is not a run folder",
    )
    build.add_argument(
        "--design",
        default="balanced",
        choices=DECK_DESIGNS,
        help="balanced: --n-real real and --n-fake synthetic images spread over the sets; paper: "
        "the paper's 68 (3 from each of 19 sets, 11 real)",
    )
    build.add_argument("--out", required=True, type=Path, help="the new study folder")
    serving = sub.add_parser("serve", help="serve the rating page")
    serving.add_argument("study", type=Path)
    serving.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (this machine only) unless told otherwise")
    serving.add_argument("--port", type=int, default=8000)
    serving.add_argument(
        "--open-registration", action="store_true", help="let anyone with the URL join (default: invitation links only)"
    )
    invite = sub.add_parser("invite", help="print one secret invitation link per rater")
    invite.add_argument("study", type=Path)
    invite.add_argument("--n", type=int, default=1, help="how many links")
    invite.add_argument("--url", default="http://127.0.0.1:8000", help="the address raters reach the page at")
    analyze = sub.add_parser("analyze", help="tables, agreement, metrics vs ratings")
    analyze.add_argument("study", type=Path)
    analyze.add_argument("--metrics", type=Path, default=None, help="a sweep folder or its report's results.csv")
    analyze.add_argument(
        "--role",
        default=None,
        choices=ROLES,
        help="relate metrics to this role's ratings only (default: all, then each role present)",
    )
    analyze.add_argument("--log-fit", action="store_true", help="also fit metric = a ln(rating) + b (paper's Fig. 2)")
    analyze.add_argument("--out", type=Path, default=None)
    mrmc = sub.add_parser(
        "mrmc", help="Obuchowski-Rockette reader-study analysis of a long table (reader,case,truth,treatment,rating)"
    )
    mrmc.add_argument("table", type=Path, help="CSV, one row a reading; truth 1 for the class a higher rating means")
    mrmc.add_argument("--out", type=Path, default=None, help="output folder (default: beside the table)")
    mrmc.add_argument("--alpha", type=float, default=0.05)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = survey_parser().parse_args(argv)
    return cli_status(lambda: run_command(args))


def run_command(args: argparse.Namespace) -> None:
    if args.command == "build":
        from fetal_dcgan.survey.deck import build_deck

        study = build_deck(
            args.real, args.fake, args.out, args.n_real, args.n_fake, args.seed, args.fit, args.design, args.config
        )
        print(
            f"Study of {study['images']} images ({study['n_real']} real from {study['real']}, fit={study['fit']}, "
            f"resize={study['resize']} {study['fit_source']}) in {args.out}; the answer key is in {args.out}/private/."
        )
        print(f"Serve it: python -m fetal_dcgan.survey serve {args.out}")
    elif args.command == "serve":
        StudyLayout(args.study).check()
        serve(args.study, args.host, args.port, args.open_registration)
    elif args.command == "invite":
        if args.n < 1:
            raise UserError(f"--n {args.n}: give how many raters to invite, e.g. --n 5.")
        for code in Storage(StudyLayout(args.study).check().ratings).invite(args.n):
            print(f"{args.url.rstrip('/')}/join/{code}")
    elif args.command == "mrmc":
        from fetal_dcgan.survey.mrmc import analyse, read_table, write

        result = analyse(read_table(args.table), args.alpha)
        print(result["tests"].to_string(index=False) if not result["tests"].empty else "one treatment: no comparison")
        print(result["treatments"].to_string(index=False))
        for name, path in write(result, args.out or args.table.with_name(f"{args.table.stem}-mrmc")).items():
            print(f"{name:<12} {path}")
    else:
        from fetal_dcgan.survey.analysis import analyze as run_analysis

        for name, path in run_analysis(args.study, args.metrics, args.out, args.role, args.log_fit).items():
            print(f"{name:<18} {path}")


if __name__ == "__main__":
    sys.exit(main())
