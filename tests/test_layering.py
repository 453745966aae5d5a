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


def imported_after(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=120, check=True)
    return set(result.stdout.split())


@pytest.mark.parametrize("module", ["mesh", "experiments.run", "experiments.cli",
                                    "geoloc_tf.m1.config", "geoloc_tf.runtime_config"])
def test_module_does_not_import_tensorflow_or_keras(module):
    loaded = imported_after(module)
    assert "tensorflow" not in loaded and "keras" not in loaded, f"importing {module} loads TF/Keras"


def test_mesh_imports_nothing_above_it():
    loaded = imported_after("mesh")
    assert not {"data_pipelines", "geoloc_tf", "experiments"} & loaded


def test_mesh_and_its_tools_load_neither_tensorflow_nor_matplotlib():
    loaded = imported_after("mesh, mesh.build, mesh.best_possible, mesh.geodesy, mesh.coords_csv")
    heavy = {m for m in loaded if m.split(".")[0] in ("tensorflow", "keras", "matplotlib")}
    assert not heavy, sorted(heavy)[:5]  # matplotlib only when a map is drawn
