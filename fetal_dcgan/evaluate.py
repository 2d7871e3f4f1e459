"""Score a folder of synthetic images against a folder of real ones.

    python -m fetal_dcgan.evaluate --real DIR --fake DIR [--metrics fid kid psnr mi lbp]
                                   [--resize 64] [--out scores.json]

Prints a table and, with ``--out``, writes JSON: every set-level value, the two LBP
vectors, per-image values keyed by file name, and a status per metric.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from fetal_dcgan.data.preprocess import FIT_MODES, read_image_set
from fetal_dcgan.data.sources import folder_images
from fetal_dcgan.errors import UserError, cli_status
from fetal_dcgan.metrics.memorisation import closest_pairs_sheet
from fetal_dcgan.metrics.suite import METRICS, MetricsResult, MetricSuite
from fetal_dcgan.runs import preprocessing
from fetal_dcgan.utils import atomic_write_text


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
    out.update({k: _json_value(result.vectors[k]) for k in ("lbp_reference", "lbp_synthetic", "lbp_abs_diff")
                if k in result.vectors})
    out["per_image"] = {k: _json_value(v) for k, v in result.per_image.items()}
    if fake_files is not None:
        out["per_image"]["file"] = [p.name for p in fake_files]
    out["status"] = dict(result.status)
    return out


def format_table(result: MetricsResult) -> str:
    """Set-level values, one per line, then each metric's status."""
    lines = [f"{key:<22} {value:.6g}" if isinstance(value, float) else f"{key:<22} {value}"
             for key, value in result.scalars.items()]
    lines += [f"{'status ' + name:<22} {text}" for name, text in result.status.items()]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m fetal_dcgan.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", required=True, type=Path, help="folder of real (reference) images")
    parser.add_argument("--fake", required=True, type=Path, help="folder of synthetic images")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS), choices=list(METRICS))
    parser.add_argument("--train", type=Path, default=None,
                        help="folder of the training images, for the memorisation audit")
    parser.add_argument("--resize", type=int, default=None,
                        help="fit every image into SIZE x SIZE first (default: the run's data.image_size when --fake "
                             "is a run's sample set; otherwise sizes must already match)")
    parser.add_argument("--fit", choices=FIT_MODES, default=None,
                        help="how --resize fits non-square images (default: the run's data.fit when --fake is a "
                             "run's sample set, else pad)")
    parser.add_argument("--fid-weights", default=None, help="local path of the FID Inception weights file")
    parser.add_argument("--device", default="cpu", help="device the metrics run on (cpu, cuda)")
    parser.add_argument("--cache-dir", default=None, help="cache reference statistics here")
    parser.add_argument("--out", type=Path, default=None, help="write the scores as JSON to this file")
    return parser.parse_args(argv)


def evaluate(args: argparse.Namespace) -> dict:
    if args.resize is not None and args.resize < 1:
        raise UserError(f"--resize {args.resize}: give a positive size in pixels, e.g. --resize 64.")
    real_files, fake_files = folder_images(args.real), folder_images(args.fake)
    fit, size, source = preprocessing([args.fake], args.fit, args.resize)
    fit = fit or "pad"
    if source != "as given":
        print(f"Real images fitted to {size} px with fit={fit}, {source}.")
    real = read_image_set(real_files, size, fit)
    fake = read_image_set(fake_files, size, fit)
    if real.shape[-2:] != fake.shape[-2:]:
        raise UserError(f"Real images are {real.shape[-1]}x{real.shape[-2]} but synthetic ones are "
                        f"{fake.shape[-1]}x{fake.shape[-2]}: pass --resize SIZE to fit both to one size.")
    train = None
    if args.train is not None:
        train = read_image_set(folder_images(args.train), size or fake.shape[-1], fit)
    suite = MetricSuite(args.metrics, fid={"weights_path": args.fid_weights}, device=args.device,
                        cache_dir=args.cache_dir)
    result = suite.score(fake, real, train)
    print(format_table(result))
    payload = result_to_json(result, fake_files)
    if args.out is not None:
        atomic_write_text(json.dumps(payload, indent=1), args.out)
        print(f"wrote {args.out}")
        if "nearest_train_ncc" in result.per_image:
            sheet = closest_pairs_sheet(fake, train, result.per_image["nearest_train_ncc"],
                                        result.per_image["nearest_train_index"],
                                        args.out.with_name(args.out.stem + "_closest_to_training.png"))
            print(f"wrote {sheet}")
    return payload


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return cli_status(lambda: evaluate(args))


if __name__ == "__main__":
    sys.exit(main())
