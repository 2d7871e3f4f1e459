"""``python -m fetal_dcgan.anatomy train [overrides]``: train (or find) the head-measurement
model for ``data`` at ``data.image_size`` and print its held-out accuracy;
``python -m fetal_dcgan.anatomy list``: the models in the cache. Overrides are training's
Hydra overrides, e.g. ``data=hc18 data.root=/data/HC18 data.image_size=128``."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from fetal_dcgan.errors import UserError

USAGE = (
    "usage: python -m fetal_dcgan.anatomy train [data=phantom|hc18 data.root=DIR data.image_size=64|128 "
    "anatomy.epochs=N ...]\n       python -m fetal_dcgan.anatomy list"
)

#: Columns of the accuracy table, with their headings.
ACCURACY_COLUMNS = {
    "n": "held-out images",
    "dice": "Dice",
    "hd95_px": "HD95 (px, median)",
    "hc_abs_error_mm_mean": "HC error (mm, mean)",
    "hc_abs_error_mm_median": "HC error (mm, median)",
    "hc_error_pct_median": "HC error (%, median)",
    "resolution_floor_pct_median": "true mask's own error (%, median)",
    "found_rate": "plausible heads (share)",
}


def accuracy_table(metas: list[dict]) -> str:
    """Markdown: one row per model, the held-out accuracy it was trained to."""
    lines = [
        "| data | px | " + " | ".join(ACCURACY_COLUMNS.values()) + " |",
        "|---|---|" + "---|" * len(ACCURACY_COLUMNS),
    ]
    for m in metas:
        cells = [
            f"{m['accuracy'][k]:.3g}" if isinstance(m["accuracy"][k], float) else str(m["accuracy"][k])
            for k in ACCURACY_COLUMNS
        ]
        lines.append(f"| {m['source']} | {m['image_size']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("train", "list"):
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    logging.getLogger("fetal_dcgan").setLevel(logging.INFO)  # ours; libraries only warn
    from fetal_dcgan.anatomy.model import BundleLayout
    from fetal_dcgan.config import compose_config

    try:
        cfg = compose_config(argv[1:])
        if argv[0] == "list":
            found = sorted(Path(cfg.anatomy.cache_dir).expanduser().glob(f"*/{BundleLayout.META}"))
            print("\n".join(str(p.parent) for p in found))
            metas = [json.loads(p.read_text()) for p in found]
            print(accuracy_table(metas) if metas else f"No models in {cfg.anatomy.cache_dir}.")
            return 0
        from fetal_dcgan.anatomy.model import train_model
        from fetal_dcgan.checks import check_config

        check_config(cfg)
        model = train_model(cfg)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Head-measurement model: {model.path}")
    print(accuracy_table([model.meta]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
