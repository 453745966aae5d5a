"""The arrows of the house point one way: mesh <- data_pipelines <- geoloc_tf <- experiments.

mesh/ is pure numpy/scipy so a GIS user can load it alone, fast; the runner's flag parsing must not
pay TensorFlow's import either (stages import it when they run). The loading checks run in a fresh
interpreter so modules imported by other tests do not hide a violation; the source checks read
every import statement of every module (``ast.walk``: those inside functions too, which loading
alone never sees until the function runs).
"""

import ast
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


#: Our own packages, whose private (underscore) names stay inside the module that defines them.
OURS = ("mesh", "data_pipelines", "geoloc_tf", "experiments")

#: (module, imported name) pairs still allowed to cross a module for a private name, one line each
#: saying why.
PRIVATE_ALLOWED = {
    # the benchmarks' entry point writes the performance page its own package builds
    ("experiments.benchmarks.__main__", "_page"),
}


def imports_of(path: Path, root: Path = REPO) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names imported from it) of every import statement in ``path``, at
    any depth (functions, classes, ``if TYPE_CHECKING``), relative imports resolved."""
    package = list(path.relative_to(root).parts[:-1])  # a module's, or an __init__'s own
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, name, [alias.name for alias in node.names]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_statement_anywhere_in_a_package_points_up(package):
    """Every import, top-level or inside a function, of every module of the package."""
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in sorted((REPO / package).rglob("*.py"))
        for line, name, _ in imports_of(path)
        if name.split(".")[0] in FORBIDDEN[package]
    ]
    assert not wrong, wrong


def test_private_names_are_not_imported_from_another_module():
    """A name shared between modules is public: underscore names stay in their module."""
    wrong = []
    for package in OURS:
        for path in sorted((REPO / package).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            for line, name, names in imports_of(path):
                if name.split(".")[0] not in OURS:
                    continue
                for imported in names:
                    private = imported.startswith("_") and not imported.startswith("__")
                    if private and (module, imported) not in PRIVATE_ALLOWED:
                        wrong.append(f"{path.relative_to(REPO)}:{line} imports {imported} from {name}")
    assert not wrong, wrong


def test_the_source_check_sees_imports_inside_functions(tmp_path):
    """The reader itself: an import inside a function, and a relative one, are found."""
    source = tmp_path / "geoloc_tf" / "m9" / "late.py"
    source.parent.mkdir(parents=True)
    source.write_text("def f():\n    from experiments.run import main\n    from ..plots import _save\n")
    assert imports_of(source, tmp_path) == [
        (2, "experiments.run", ["main"]),
        (3, "geoloc_tf.plots", ["_save"]),
    ]


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
