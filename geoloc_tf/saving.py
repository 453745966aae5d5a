"""Saving models so that a reader never sees half a file or half a folder (``mesh.atomic``)."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from geoloc_tf import errors
from mesh import settings
from mesh.atomic import atomic_dir, atomic_path, write_text_atomic

if TYPE_CHECKING:
    from geoloc_tf.run_layout import RunLayout


def save_keras(model: keras.Model, path: str) -> str:
    """Saves ``model`` as a ``.keras`` file, written under a temporary name and renamed into place."""
    if not str(path).endswith(".keras"):
        raise errors.ExportError(f"{path}: a Keras model file must end in .keras")
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path


def write_export_archive(archive: keras.export.ExportArchive, export_dir: str | os.PathLike) -> str:
    """Writes a SavedModel to a temporary folder beside `export_dir`, then swaps it into place."""
    with atomic_dir(export_dir) as tmp:
        archive.write_out(tmp, verbose=False)
    return os.path.abspath(export_dir)


def load_keras(path: str | os.PathLike) -> keras.Model:
    """The one loader of ``.keras`` files: Keras' safe mode, always (a ``.keras`` file is data, a
    Lambda layer in it is Python code that loading would run, so such a file is refused, named,
    never run), and any file that is not a loadable Keras model becomes one ExportError line."""
    import geoloc_tf.layers  # noqa: F401  (registers the custom layers for loading)

    # A .keras file is a zip whose members each hold a CRC-32 (checked by zipfile while Keras
    # reads them): a truncated or altered file is refused as one line, never half loaded.
    damaged = f"{path}: not a whole .keras file (truncated or damaged"
    remedy = "rerun the stage that wrote it or copy the file again"
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise errors.ExportError(f"{damaged}: no zip directory); {remedy}")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (zipfile.BadZipFile, EOFError) as error:
        raise errors.ExportError(f"{damaged}: {errors.first_line(error)}); {remedy}") from None
    except ValueError as error:
        if "safe_mode" in str(error):
            raise errors.ExportError(
                f"{path}: refused: the model holds Python code (a Lambda layer) that loading would run; "
                "geoloc loads .keras files in Keras' safe mode only (README: which model files are safe)"
            ) from None
        raise errors.ExportError(f"{path}: not a loadable Keras model ({errors.first_line(error)})") from None
    except (OSError, TypeError, KeyError) as error:
        raise errors.ExportError(f"{path}: not a loadable Keras model ({errors.first_line(error)})") from None


def save_task_model(layout: "RunLayout", name: str, model: keras.Model, configs: dict[str, Any]) -> Path:
    """A metadata model's file and, beside it, the config dataclasses it was built from
    (``{"m2": M2Config, ...}``), so a loader knows its inputs without inspecting it."""
    save_keras(model, str(layout.model_file(name)))
    write_text_atomic(
        layout.task_config(name),
        json.dumps(
            {key: settings.flat_values(config) for key, config in configs.items()}, indent=2, sort_keys=True
        ),
    )
    return layout.model_file(name)


def load_task_model(layout: "RunLayout", name: str) -> tuple[keras.Model, dict[str, dict]]:
    """(model, saved configs as dicts) written by ``save_task_model``."""
    path = layout.task_config(name)
    if not path.is_file():
        raise errors.ModelConfigError(
            f"{path}: not found; expected the settings saved with {layout.model_file(name)} "
            f"(rerun the {name} stage)"
        )
    return load_keras(layout.model_file(name)), json.loads(path.read_text())
