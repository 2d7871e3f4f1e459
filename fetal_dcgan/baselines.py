"""What a perfect generator would score: the metrics of real images against real images.

    python -m fetal_dcgan.baselines [--source phantom|hc18|folder --root DIR] [--image-size 64]
    python -m fetal_dcgan.baselines --margins SWEEP [--draws 8]

Two disjoint random halves of the real images are scored against each other (the floor
of every distance, the ceiling of every similarity), under each ``data.fit``; then one
half, augmented as in training (flip and rotation, nearest or bilinear resampling), is
scored against the other. A synthetic set can only be judged against these numbers: a
generator that reproduced its augmented training images perfectly would still sit at the
augmented distance from the non-augmented reference set.

With ``--margins SWEEP`` it measures and declares the sweep's equivalence margins instead
(``report.measure``): real sets from the sweep's own training pool scored against its
reference set with its metric settings, as a synthetic set is, per image size, with the
margin source its runs declare (``study.margins``), written to ``SWEEP/margins.json``.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from fetal_dcgan.data.augment import INTERPOLATIONS, augment, to_unit
from fetal_dcgan.data.preprocess import FIT_MODES, RESIZE_MODES, load_images
from fetal_dcgan.data.sources import discover
from fetal_dcgan.errors import cli_status
from fetal_dcgan.metrics import METRICS, MetricSuite
from fetal_dcgan.report.measure import sweep_margins
from fetal_dcgan.report.settings import MARGIN_SOURCES
from fetal_dcgan.utils import default_cache_dir

#: Metrics scored, each reported by its headline key (mean all-pairs PSNR and MI, LBP L1).
BASELINE_METRICS = ("psnr", "mi", "lbp")


def halves(images: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    return images[order[: len(images) // 2]], images[order[len(images) // 2 :]]


def real_baselines(images_by_fit: dict[str, torch.Tensor], degrees: float = 10.0, seed: int = 0) -> list[dict]:
    """One row per (fit, comparison): the headline key of each of ``BASELINE_METRICS``."""
    suite = MetricSuite(BASELINE_METRICS, device="cpu", ci_resamples=0)
    keys = [METRICS[name].headline.name for name in BASELINE_METRICS]
    rows = []
    for fit, images in images_by_fit.items():
        a, b = halves(images, seed)
        pairs = {"real half vs real half": a}
        for interpolation in INTERPOLATIONS:
            generator = torch.Generator().manual_seed(seed)
            augmented = augment(to_unit(a), True, degrees, interpolation, generator)
            pairs[f"augmented ({interpolation}) half vs real half"] = augmented.mul(255).round().to(torch.uint8)
        for name, x in pairs.items():
            scalars = suite.score(x, b).scalars
            rows.append(
                {
                    "fit": fit,
                    "comparison": name,
                    "images": f"{len(x)} vs {len(b)}",
                    **{key: scalars[key] for key in keys},
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fetal_dcgan.baselines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="phantom", choices=("phantom", "hc18", "folder"))
    parser.add_argument("--root", default=None, help="data folder for hc18 and folder")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--images", type=int, default=800, help="real images used (two halves of this many)")
    parser.add_argument("--degrees", type=float, default=10.0, help="rotation range of the augmentation")
    parser.add_argument(
        "--resize",
        default="antialias",
        choices=RESIZE_MODES,
        help="antialias (PIL bilinear) or tensor (no antialiasing, the paper's notebooks)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--margins",
        metavar="SWEEP",
        default=None,
        help="measure a sweep's equivalence margins (real-vs-real spread) into SWEEP/margins.json",
    )
    parser.add_argument("--draws", type=int, default=8, help="with --margins: real sets drawn")
    parser.add_argument(
        "--margin-source",
        default=None,
        choices=MARGIN_SOURCES,
        help="with --margins: declare every margin from this source instead of the runs' study.margins.source",
    )
    args = parser.parse_args(argv)

    def run() -> None:
        if args.margins:
            path = sweep_margins(args.margins, args.draws, source=args.margin_source)
            for size, section in json.loads(path.read_text())["sizes"].items():
                print(f"{size} px: {section['about']['description']}")
                for key, m in section["metrics"].items():
                    sd = m.get("sd", float("nan"))
                    print(f"  {key:<26} real sd {sd:<10.4g} margin {m['margin']:<10.4g} {m['about']}")
            print(f"written to {path}")
            return
        cache = default_cache_dir()
        options = {"cache_dir": cache} if args.source == "phantom" else {"root": args.root}
        files = discover(args.source, **options)[: args.images]
        rows = real_baselines(
            {fit: load_images(files, args.image_size, fit, cache, resize=args.resize) for fit in FIT_MODES},
            args.degrees,
        )
        if args.json:
            print(json.dumps(rows))
            return
        print(
            f"{args.source}, {len(files)} images at {args.image_size} px (resize={args.resize}), rotation "
            f"+-{args.degrees} degrees"
        )
        keys = [METRICS[name].headline for name in BASELINE_METRICS]
        print(f"{'fit':<7} {'comparison':<38} " + " ".join(f"{k.name:>14}" for k in keys))
        for r in rows:
            print(f"{r['fit']:<7} {r['comparison']:<38} " + " ".join(f"{r[k.name]:14.4g}" for k in keys))

    return cli_status(run)


if __name__ == "__main__":
    sys.exit(main())
