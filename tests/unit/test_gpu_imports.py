"""The GPU check's set-up: the GPU machine's image and the wheels carried to it cover every
import of the GPU path (scripts/gpu_imports.py reads them from the code)."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_imports", ROOT / "scripts" / "gpu_imports.py")
gpu_imports = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_imports)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def listed(name: str) -> dict[str, str | None]:
    """Packages of a scripts/ list, by canonical name, with their pinned versions."""
    lines = (ROOT / "scripts" / name).read_text().splitlines()
    pins = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {canonical(p[0].strip()): (p[1].strip() if len(p) > 1 else None) for p in pins}


PROVIDERS = metadata.packages_distributions()  # top-level module -> distributions (a slow scan: once)


def distribution(module: str) -> str:
    """The installed distribution that provides a module (a Hydra plugin by its own name)."""
    candidates = [canonical(d) for d in PROVIDERS[module.split(".")[0]]]
    return candidates[0] if len(candidates) == 1 else canonical(module.split(".")[-1])


def test_the_image_and_the_carried_wheels_cover_every_import_of_the_gpu_path():
    available = set(listed("gpu_image.txt")) | set(listed("gpu_wheels.txt"))
    needed = {distribution(m) for m in gpu_imports.gpu_path_modules()}
    assert {"monai", "hydra-core", "torch-fidelity", "hydra-joblib-launcher", "torch"} <= needed
    assert needed - available == set(), "add these to scripts/gpu_wheels.txt"


def test_what_the_carried_wheels_require_is_there_too():
    available = set(listed("gpu_image.txt")) | set(listed("gpu_wheels.txt"))
    environment = {"python_version": "3.12", "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    for wheel in listed("gpu_wheels.txt"):
        for text in metadata.requires(wheel) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                assert canonical(requirement.name) in available, f"{wheel} needs {requirement.name}"


def test_imports_are_found_at_any_depth_and_optional_ones_are_left_out(tmp_path):
    source = tmp_path / "module.py"
    source.write_text(
        "import os\nimport numpy as np\nfrom fetal_dcgan import data\n"
        "def f():\n    from scipy import stats\n    try:\n        import frd_score\n"
        "    except ImportError:\n        pass\n    try:\n        import pandas\n    finally:\n        pass\n"
    )
    assert gpu_imports.imports_of(source) == {"numpy", "scipy", "pandas"}


def test_the_missing_report_names_each_module_that_does_not_import():
    failed = gpu_imports.missing({"numpy", "no_such_module_here"})
    assert list(failed) == ["no_such_module_here"] and "ModuleNotFoundError" in failed["no_such_module_here"]
