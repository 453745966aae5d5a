"""Saving models so that a reader never sees half a file or half a folder."""

from __future__ import annotations

import os
import shutil
import tempfile

import keras

from geoloc_tf import errors


def replace_dir(tmp: str, final: str) -> None:
    """Moves ``tmp`` to ``final``; an existing ``final`` is replaced only once ``tmp`` is whole."""
    old = None
    if os.path.exists(final):
        old = f"{final}.old-{os.getpid()}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old)


def save_keras(model: keras.Model, path: str) -> str:
    """Saves ``model`` as a ``.keras`` file, written under a temporary name and renamed into place."""
    if not path.endswith(".keras"):
        raise errors.ExportError(f"{path}: a Keras model file must end in .keras")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)[:-6]}.partial-{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, path)
    return path


def write_export_archive(archive: keras.export.ExportArchive, export_dir: str | os.PathLike) -> str:
    """Writes a SavedModel to a temporary folder beside `export_dir`, then swaps it into place."""
    final = os.path.abspath(export_dir)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.partial-", dir=os.path.dirname(final))
    try:
        archive.write_out(tmp, verbose=False)
        replace_dir(tmp, final)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
    return final
