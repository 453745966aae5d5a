"""``mesh`` is the lowest layer: importing it must not import TensorFlow (nor matplotlib)."""

import subprocess
import sys


def test_import_mesh_does_not_import_tensorflow():
    code = (
        "import sys, mesh, mesh.build, mesh.best_possible, mesh.geodesy, mesh.coords_csv\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'matplotlib')]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
