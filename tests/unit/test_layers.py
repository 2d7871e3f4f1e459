"""Imports point down the layers of docs/development.md, and no module imports itself back.

Every import of a fetal_dcgan module, at the top of a file or inside a function, is an
edge. An edge may stay in its layer or go down; entry points (the commands) never import
each other; and the module graph has no cycle. The checker is tried on a package it must
reject, so the test can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import REPO

#: The layers, bottom first: a module's layer is that of its first name under fetal_dcgan.
LAYERS = (
    ("errors", "utils", "rules", "runs"),
    ("imaging",),
    ("data",),
    ("models",),
    ("anatomy",),
    ("metrics",),
    ("callbacks",),
    ("report",),
    ("survey",),
    ("pipeline", "checks", "config"),
)
#: The commands: `python -m fetal_dcgan.<name>` and every package's `__main__`.
ENTRY_POINTS = ("train", "evaluate", "bench", "baselines")


def layer_of(module: str) -> int:
    parts = module.split(".")
    if parts[-1] == "__main__" or (len(parts) == 2 and parts[1] in ENTRY_POINTS):
        return len(LAYERS)
    name = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(LAYERS):
        if name in names:
            return index
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS (and docs/development.md)")


def imports(root: Path, package: str) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, every import statement counted;
    ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``."""
    paths = {
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
        for p in sorted((root / package).rglob("*.py"))
    }
    graph = {}
    for module, path in paths.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.update(
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in paths else node.module for a in node.names
                )
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[module] = {m for m in found if m == package or m.startswith(package + ".")}
    return graph


def violations(graph: dict[str, set[str]], layer=layer_of) -> list[str]:
    """Upward imports, imports between entry points, and cycles."""
    top = len(LAYERS)
    found = [
        f"{a} imports {b}, a layer above it"
        for a, targets in graph.items()
        for b in targets
        if layer(b) > layer(a) or (layer(a) == layer(b) == top and a != b)
    ]
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(t for t in graph[module] if t in graph and t != module):  # itself: a __main__ block
            if state.get(target) == 1:
                found.append("cycle: " + " -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_imports_point_down_and_never_in_a_circle():
    assert violations(imports(REPO, "fetal_dcgan")) == []


def test_the_checker_rejects_an_upward_import_and_a_cycle(tmp_path):
    package = tmp_path / "fetal_dcgan"
    for name, source in {
        "__init__": "",
        "errors": "",
        "data/__init__": "",
        "data/datamodule": "from fetal_dcgan.metrics import diversity\n",
        "metrics/__init__": "",
        "metrics/diversity": "from fetal_dcgan.metrics import psnr\n",
        "metrics/psnr": "import fetal_dcgan.metrics.diversity\n",
        "train": "",
        "evaluate": "from fetal_dcgan.train import main\n",
    }.items():
        (package / f"{name}.py").parent.mkdir(parents=True, exist_ok=True)
        (package / f"{name}.py").write_text(source)
    found = violations(imports(tmp_path, "fetal_dcgan"))
    assert "fetal_dcgan.data.datamodule imports fetal_dcgan.metrics.diversity, a layer above it" in found
    assert "fetal_dcgan.evaluate imports fetal_dcgan.train, a layer above it" in found
    assert any(f.startswith("cycle:") and "fetal_dcgan.metrics.psnr" in f for f in found), found


def test_every_package_has_a_layer_and_the_docs_name_them():
    docs = (REPO / "docs" / "development.md").read_text()
    for names in LAYERS:
        for name in names:
            assert f"`{name}`" in docs, f"docs/development.md does not place `{name}` in the layers"
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("fetal_dcgan.nowhere")
