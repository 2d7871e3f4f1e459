"""Benchmarks: ``python -m fetal_dcgan.bench metrics [--json]``.

``metrics`` scores a synthetic set against a reference set of phantom images with the
project's vectorised PSNR, MI/NMI and LBPv, then times scikit-image / scikit-learn on a
random sample of the same pairs, extrapolates their time to all pairs, and reports how
closely the two agree.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time

import numpy as np
import torch

from fetal_dcgan.data.preprocess import load_images
from fetal_dcgan.data.sources import phantom_images
from fetal_dcgan.metrics.lbp import lbp_histograms
from fetal_dcgan.metrics.mutual_info import pairwise_mutual_information
from fetal_dcgan.metrics.psnr import pairwise_psnr


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phantom_sets(n_fake: int, n_real: int, image_size: int, cache_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: the first phantom images; synthetic: the last ones with added noise."""
    cache = cache_dir or "~/.cache/fetal_dcgan"
    files = phantom_images(cache, n_images=max(999, n_fake, n_real))
    images = load_images(files, image_size, "pad", cache)
    real = images[:n_real]
    noise = torch.randint(-12, 13, images[:n_fake].shape, generator=torch.Generator().manual_seed(0))
    fake = (images[-n_fake:].int() + noise).clamp(0, 255).to(torch.uint8)
    return fake, real


def bench_metrics(n_fake: int, n_real: int, image_size: int, sample_pairs: int, cache_dir: str | None) -> dict:
    from skimage.feature import local_binary_pattern
    from skimage.metrics import normalized_mutual_information, peak_signal_noise_ratio
    from sklearn.metrics import mutual_info_score

    fake, real = phantom_sets(n_fake, n_real, image_size, cache_dir)
    timings = {}
    start = time.perf_counter()
    psnr = pairwise_psnr(fake, real).numpy()
    timings["psnr"] = time.perf_counter() - start
    start = time.perf_counter()
    mi, nmi = pairwise_mutual_information(fake, real)
    timings["mi_nmi"] = time.perf_counter() - start
    start = time.perf_counter()
    hist_fake, hist_real = lbp_histograms(fake), lbp_histograms(real)
    timings["lbp"] = time.perf_counter() - start
    ours_total = sum(timings.values())

    rng = np.random.default_rng(0)
    pairs = list(zip(rng.integers(0, n_fake, sample_pairs), rng.integers(0, n_real, sample_pairs)))
    f, r = fake[:, 0].numpy(), real[:, 0].numpy()
    start = time.perf_counter()
    ref_psnr = [peak_signal_noise_ratio(r[j], f[i], data_range=255) for i, j in pairs]
    ref_mi = [mutual_info_score(f[i].ravel(), r[j].ravel()) / math.log(2) for i, j in pairs]
    ref_nmi = [normalized_mutual_information(f[i], r[j], bins=256) for i, j in pairs]
    per_pair = (time.perf_counter() - start) / sample_pairs
    lbp_images = min(100, n_fake)
    start = time.perf_counter()
    ref_hist = [np.bincount(local_binary_pattern(img, 8, 1).astype(int).ravel(), minlength=256) for img in f[:lbp_images]]
    per_image_lbp = (time.perf_counter() - start) / lbp_images
    reference_total = per_pair * n_fake * n_real + per_image_lbp * (n_fake + n_real)

    def max_rel(ours: np.ndarray, theirs: list[float]) -> float:
        theirs = np.asarray(theirs)
        return float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-12)))

    index = tuple(np.array(pairs).T)
    return {
        "n_fake": n_fake, "n_real": n_real, "image_size": image_size, "pairs": n_fake * n_real,
        "seconds": {k: round(v, 3) for k, v in timings.items()}, "seconds_total": round(ours_total, 2),
        "reference_seconds_estimated": round(reference_total, 1),
        "reference_sampled_pairs": sample_pairs, "speedup": round(reference_total / ours_total, 1),
        "max_rel_diff": {"psnr": max_rel(psnr[index], ref_psnr), "mi": max_rel(mi[index], ref_mi),
                         "nmi": max_rel(nmi[index], ref_nmi)},
        "lbp_histograms_identical": bool(np.array_equal(hist_fake[:lbp_images], np.stack(ref_hist))),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fetal_dcgan.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    metrics = sub.add_parser("metrics", help="all-pairs PSNR, MI/NMI and LBPv against scikit-image/scikit-learn")
    metrics.add_argument("--n-fake", type=int, default=800)
    metrics.add_argument("--n-real", type=int, default=800)
    metrics.add_argument("--image-size", type=int, default=64)
    metrics.add_argument("--sample-pairs", type=int, default=300, help="pairs timed with the reference libraries")
    metrics.add_argument("--cache-dir", default=None)
    metrics.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    result = bench_metrics(args.n_fake, args.n_real, args.image_size, args.sample_pairs, args.cache_dir)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['pairs']} pairs of {args.image_size}x{args.image_size} images "
              f"({args.n_fake} synthetic x {args.n_real} reference)")
        for name, seconds in result["seconds"].items():
            print(f"  {name:<8} {seconds:8.2f} s")
        print(f"  total    {result['seconds_total']:8.2f} s   "
              f"(scikit-image/scikit-learn loop: ~{result['reference_seconds_estimated']:.0f} s "
              f"from {args.sample_pairs} sampled pairs; {result['speedup']}x)")
        print(f"  max relative difference on sampled pairs: {result['max_rel_diff']}")
        print(f"  LBP histograms identical to scikit-image: {result['lbp_histograms_identical']}")
        print(f"  peak RSS {result['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
