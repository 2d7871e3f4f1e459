"""The third-party modules the GPU check needs, and which of them this Python lacks.

``python scripts/gpu_imports.py`` imports each one and exits 1 naming those that fail, so a
GPU machine's missing package shows in the first seconds of scripts/gpu_check.sh rather than
as a failed step minutes later. The list is read from the code, not kept by hand: every
import in the package (except the rating site, which no GPU step runs) and in the GPU
check's tests, lazy imports included, plus the Hydra launcher that ``jobs=shared_gpu``
selects. Imports guarded by ``except ImportError`` are optional and left out.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the GPU check runs: the package without the rating site, and its tests.
PACKAGE, LEFT_OUT = ROOT / "fetal_dcgan", ROOT / "fetal_dcgan" / "survey"
GPU_TESTS = ("tests/integration/test_gpu.py", "tests/integration/test_speed_options.py", "tests/unit/test_metrics.py")
TEST_SUPPORT = ("tests/conftest.py", "tests/helpers.py")
LOCAL = {"fetal_dcgan", "helpers"}


def _guarded(tree: ast.AST) -> set[int]:
    """Line numbers of imports inside ``try`` blocks that catch ImportError."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if caught & {"ImportError", "ModuleNotFoundError"}:
                lines |= {n.lineno for stmt in node.body for n in ast.walk(stmt) if hasattr(n, "lineno")}
    return lines


def imports_of(path: Path) -> set[str]:
    """Top-level third-party modules a file imports, at any depth, unless guarded."""
    tree = ast.parse(path.read_text(), filename=str(path))
    guarded, found = _guarded(tree), set()
    for node in ast.walk(tree):
        if node.lineno in guarded if hasattr(node, "lineno") else False:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in LOCAL}


def launcher_modules() -> set[str]:
    """The Hydra launcher plugin that conf/jobs/shared_gpu.yaml selects."""
    text = (ROOT / "conf" / "jobs" / "shared_gpu.yaml").read_text()
    return {f"hydra_plugins.hydra_{name}_launcher" for name in re.findall(r"/hydra/launcher:\s*(\w+)", text)}


def gpu_path_modules() -> set[str]:
    files = [p for p in PACKAGE.rglob("*.py") if LEFT_OUT not in p.parents]
    files += [ROOT / name for name in GPU_TESTS + TEST_SUPPORT]
    tests = {Path(name).stem for name in GPU_TESTS}  # pytest puts test folders on the path
    return set().union(*map(imports_of, files)) - tests | launcher_modules()


def missing(modules: set[str]) -> dict[str, str]:
    """Each module that does not import here, with why."""
    failed = {}
    for name in sorted(modules):
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken install counts as missing too
            failed[name] = f"{type(exc).__name__}: {exc}"
    return failed


def main() -> int:
    if sys.argv[1:] == ["--tests"]:  # the GPU check's test files, for scripts/gpu_check.sh
        print(" ".join(GPU_TESTS))
        return 0
    modules = gpu_path_modules()
    failed = missing(modules)
    for name, why in failed.items():
        print(f"MISSING {name}: {why}")
    print(f"imports: {len(modules) - len(failed)} of {len(modules)} import ({', '.join(sorted(modules))})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
