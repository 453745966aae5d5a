"""Every fact in one home: two settings of the same name carry the same default.

The test finds every settings dataclass of the project (the classes of the modules that declare
settings with ``mesh.settings``), flattens their nested settings, and groups the declarations by
leaf name. A name whose declarations disagree on the default is either one fact written twice (to
be declared once and imported) or two meanings that share a word: those are listed in
``TWO_MEANINGS`` with the default of each declaration, so a new declaration or a changed default of
such a name is looked at here too.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from collections import defaultdict
from pathlib import Path

from mesh.settings import flat_settings, setting, setting_fields

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mesh", "data_pipelines", "geoloc_tf", "experiments")

#: Names with more than one meaning in the project: {name: {declaring class: its default}}.
TWO_MEANINGS: dict[str, dict[str, object]] = {
    # Each workload's own batch: photo files and an external test set through M1 (inference), the
    # feature index's forward passes, and M2's and M3's training batches (appendix A.2).
    "batch_size": {
        "PredictFilesConfig": 32,
        "ExternalEvaluateConfig": 32,
        "IndexConfig": 128,
        "M2Config": 512,
        "M3Config": 64,
    },
    # The nearest-neighbour search engine of retrieval, and what runs the ingestion (local or Beam).
    "engine": {
        "PredictFilesConfig": "auto",
        "ServerConfig": "auto",
        "IndexConfig": "auto",
        "SearchConfig": "auto",
        "IngestConfig": "local",
    },
    # The layout of the data set read by the ingestion, and the output of `predict` and `search`.
    "format": {"IngestConfig": "auto", "PredictFilesConfig": "table", "SearchConfig": "table"},
    # The side of the demo's generated photos, and M1's input side (Inception-v4: 299).
    "image_size": {"DemoSpec": 96, "M1Config": 299},
    # Files a user gives (FILES_MAX_PIXELS) and requests from strangers (SERVE_MAX_PIXELS).
    "max_pixels": {
        "IngestConfig": 100_000_000,
        "PredictFilesConfig": 100_000_000,
        "SearchConfig": 100_000_000,
        "ExternalEvaluateConfig": 100_000_000,
        "ServerConfig": 50_000_000,
    },
    # Operator (1)'s top 10 cells (§3.2, geoloc_tf.m2.config.DEFAULT_TOP_K: M2's input and M1's
    # stored predictions), and the cells an answer lists for a person or a serving signature.
    "top_k": {
        "M2Config": 10,
        "PredictConfig": 10,
        "PredictFilesConfig": 5,
        "ServerConfig": 5,
        "ExportConfig": 5,
    },
}


def _declares_settings(path: Path) -> bool:
    """Whether a module calls ``setting``/``nested`` or a ``*_setting`` helper (without importing it)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("setting", "nested") or name.endswith("_setting"):
                return True
    return False


def settings_classes() -> list[type]:
    """Every dataclass with declared settings, defined in a module of the project that declares them."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "mesh" / "settings.py" or not _declares_settings(path):
                continue
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if (
                    cls.__module__ == module.__name__
                    and dataclasses.is_dataclass(cls)
                    and setting_fields(cls)
                ):
                    found.append(cls)
    return found


def defaults_by_name(classes: list[type]) -> dict[str, dict[str, object]]:
    """{leaf setting name: {declaring class: default}}, nested settings counted at their owner."""
    out: dict[str, dict[str, object]] = defaultdict(dict)
    for cls in classes:
        for _, field, owner in flat_settings(cls):
            factory = field.default_factory
            default = field.default if factory is dataclasses.MISSING else factory()
            out[field.name][owner.__name__] = default
    return dict(out)


def disagreements(classes: list[type]) -> dict[str, dict[str, object]]:
    """The names whose declarations carry more than one default."""
    return {
        name: owners
        for name, owners in defaults_by_name(classes).items()
        if len({repr(value) for value in owners.values()}) > 1
    }


def test_the_walk_finds_every_section_of_the_run_and_of_the_commands():
    from experiments.config import SECTIONS

    names = {cls.__name__ for cls in settings_classes()}
    assert {cls.__name__ for cls in SECTIONS.values()} <= names
    assert {"PredictFilesConfig", "ServerConfig", "SearchConfig", "IndexConfig", "DemoSpec"} <= names


def test_a_name_declared_twice_has_one_default_unless_it_has_two_meanings():
    found = disagreements(settings_classes())
    unexplained = sorted(set(found) - set(TWO_MEANINGS))
    assert not unexplained, {name: found[name] for name in unexplained}
    for name, expected in TWO_MEANINGS.items():
        assert found.get(name) == expected, f"{name}: declared {found.get(name)}, listed {expected}"


def test_disagreeing_defaults_are_found():
    @dataclasses.dataclass(frozen=True)
    class A:
        top_k: int = setting(10, "Cells kept.")
        seed: int = setting(0, "Seed.")

    @dataclasses.dataclass(frozen=True)
    class B:
        top_k: int = setting(7, "Cells kept.")
        seed: int = setting(0, "Seed.")

    assert disagreements([A, B]) == {"top_k": {"A": 10, "B": 7}}
