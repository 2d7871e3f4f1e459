"""Fixtures for every test: an isolated cache. Tests under ``integration/`` are marked
``integration`` (``make test-unit`` leaves them out); shared helpers are in ``helpers.py``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Every test uses one session-wide cache outside the user's home directory."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setenv("FETAL_DCGAN_CACHE", str(cache))
    return cache


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)
