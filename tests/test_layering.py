"""The arrows of the house point one way: mesh <- data_pipelines <- geoloc_tf <- experiments.

mesh/ is pure numpy/scipy so a GIS user can load it alone, fast; the runner's flag parsing must not
pay TensorFlow's import either (stages import it when they run). Each check runs in a fresh
interpreter so modules imported by other tests do not hide a violation.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


#: What each package must never import: the packages above it (and, for mesh, TensorFlow).
FORBIDDEN = {
    "mesh": {"data_pipelines", "geoloc_tf", "experiments", "tensorflow", "keras"},
    "data_pipelines": {"geoloc_tf", "experiments"},
    "geoloc_tf": {"experiments"},
}

#: Read when flags are parsed: they must not cost TensorFlow's import.
CONFIG_MODULES = (
    "mesh.settings",
    "mesh.config",
    "data_pipelines.config",
    "geoloc_tf.m1.config",
    "geoloc_tf.runtime_config",
    "geoloc_tf.early_stopping",
    "geoloc_tf.m2.config",
    "geoloc_tf.m3.config",
    "geoloc_tf.run_configs",
    "geoloc_tf.inference.config",
    "geoloc_tf.retrieval.config",
    "experiments.config",
    "experiments.flags",
    "experiments.settings_flags",
)


def imported_after(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"import {module} failed:\n{result.stderr[-2000:]}"
    return set(result.stdout.split())


def modules_of(package: str) -> list[str]:
    """Every module of `package` (its files, not `__main__`), as dotted names."""
    root = REPO / package
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_of_a_package_imports_what_is_above_it(package):
    """Every module of the package at once, in a fresh interpreter: nothing above it is loaded."""
    loaded = imported_after(", ".join(modules_of(package)))
    wrong = {name for name in loaded if name.split(".")[0] in FORBIDDEN[package]}
    assert not wrong, f"importing {package} loads {sorted(wrong)[:5]}"


@pytest.mark.parametrize("module", CONFIG_MODULES)
def test_config_module_imports_without_tensorflow(module):
    loaded = imported_after(module)
    assert not {"tensorflow", "keras"} & loaded, f"importing {module} loads TensorFlow/Keras"


@pytest.mark.parametrize("module", ["mesh", "experiments.run", "experiments.cli"])
def test_module_does_not_import_tensorflow_or_keras(module):
    loaded = imported_after(module)
    assert "tensorflow" not in loaded and "keras" not in loaded, f"importing {module} loads TF/Keras"


def test_mesh_and_its_tools_load_neither_tensorflow_nor_matplotlib():
    loaded = imported_after("mesh, mesh.build, mesh.best_possible, mesh.geodesy, mesh.coords_csv")
    heavy = {m for m in loaded if m.split(".")[0] in ("tensorflow", "keras", "matplotlib")}
    assert not heavy, sorted(heavy)[:5]  # matplotlib only when a map is drawn
