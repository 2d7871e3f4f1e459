"""Where a report keeps each thing (as ``RunLayout`` is for a run): every writer and reader
of a report's files finds them here."""

from __future__ import annotations

from pathlib import Path


class ReportLayout:
    """A report folder: tables, ``stats.md``, ``report.html`` and ``figures/``."""

    #: The tables and pages every report writes, by name.
    FILES = {
        "results": "results.csv",
        "per_image": "per_image.csv",
        "stats": "stats.csv",
        "sensitivity": "sensitivity.csv",
        "pairwise": "pairwise.csv",
        "cells": "cells.csv",
        "stats_md": "stats.md",
        "html": "report.html",
    }
    RATINGS = "metrics_vs_ratings.csv"  # only with ratings

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def file(self, name: str) -> Path:
        """One of ``FILES`` by its name, e.g. ``file("stats")``."""
        return self.root / self.FILES[name]

    def files(self) -> dict[str, Path]:
        return {name: self.file(name) for name in self.FILES}

    @property
    def ratings(self) -> Path:
        return self.root / self.RATINGS

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def figure(self, name: str) -> Path:
        return self.figures / f"{name}.png"

    def grid(self, run: str, epoch: int) -> Path:
        return self.figures / "grids" / f"run={run}_epoch={epoch:04d}.png"
