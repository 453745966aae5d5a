"""Saving models so that a reader never sees half a file or half a folder (``mesh.atomic``)."""

from __future__ import annotations

import os

import keras

from geoloc_tf import errors
from mesh.atomic import atomic_dir, atomic_path


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
