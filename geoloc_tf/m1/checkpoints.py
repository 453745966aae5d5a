"""M1's training state on disk, so that a run killed at any step resumes where it stopped.

One format on every Keras backend: a folder per checkpoint, ``checkpoints/ckpt-<global step>/``,
holding

- ``model.npz``: the values of ``model.variables``, keyed by position (the weights, and the
  dropout's random state, so that a resumed run draws the masks an uninterrupted one would);
- ``optimizer.npz``: the values of the current phase's ``optimizer.variables``, keyed by position
  (each Adagrad cycle and the SGD phase has its own optimizer, named ``optimizer_phase<cycle>``);
- ``state.json``: that phase name, three counters (the epoch, the steps done in it and the steps
  done in all) and ``files``: the size and SHA-256 of the two ``.npz`` files
  (``mesh.integrity.file_entry``).

A checkpoint is written to a temporary folder and renamed into place (``mesh.atomic.atomic_dir``),
so a kill leaves the previous one whole; the latest two are kept. ``history.json`` holds one
record per finished epoch. The steps of an epoch are known in advance (the sampler's copies are a
function of (seed, epoch) and batches are full), so a resumed run skips the batches already trained
and ends at the same step count as an uninterrupted one. (Keras 3's ``BackupAndRestore`` restores
the epoch but replays an interrupted epoch from its first batch, which adds steps.)

A resumed run checks the files it reads against ``state.json`` (``mesh.integrity.check_written``)
before it assigns anything: a checkpoint truncated or replaced since it was written (a disk that
filled up while a run folder was copied, a file from another run) is one error line naming the file
and what to delete, never a traceback from numpy's zip reader and never a silent restart from the
first step (a run without any checkpoint starts from the first step, as ever). ``state.json`` is
the checkpoint's manifest: one that is not whole JSON with the counters, or a ``ckpt-<step>`` folder
without it, is the same error. Hashing costs about 1 s per GB at each save (Inception-v4's weights
and head with Adagrad's accumulators: under 1 GB), small next to the ``checkpoint_every_steps``
training steps between two saves. Checkpoints written before the files were recorded are read with
one warning per file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np

from geoloc_tf import errors
from geoloc_tf.run_layout import HISTORY_FILE
from mesh.atomic import atomic_dir, write_text_atomic
from mesh.integrity import WrittenFileError, check_written, file_entry

log = logging.getLogger(__name__)

COUNTERS = ("epoch", "step_in_epoch", "global_step")
#: How many checkpoints a run keeps (the latest ones).
KEEP = 2
MODEL_FILE, OPTIMIZER_FILE, STATE_FILE = "model.npz", "optimizer.npz", "state.json"
_NAME = re.compile(r"ckpt-(\d+)")


@dataclasses.dataclass
class Position:
    """Where training stands: the epoch, the steps done in it, the steps done in all."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


class TrainingCheckpoints:
    """The checkpoints of one training run in ``directory`` (the latest two are kept).

    ``scope``: the context under which variables are assigned (the tf.distribute strategy's
    ``scope``, so that mirrored variables take the restored values on every replica).
    """

    def __init__(
        self,
        directory: Path,
        model: Any,
        scope: Callable[[], ContextManager[Any]] = contextlib.nullcontext,
    ):
        self.directory = Path(directory)
        self.model = model
        self.scope = scope
        _refuse_tf_train_checkpoints(self.directory)
        self.latest = latest_checkpoint(self.directory)
        self._optimizer: tuple[str, Any] | None = None
        self._begun = False

    @property
    def resuming(self) -> bool:
        return self.latest is not None

    def start_epoch(self) -> int:
        """The epoch the latest checkpoint stopped in (0 without one), read without restoring."""
        return 0 if self.latest is None else _state(self.latest)["epoch"]

    def begin_phase(self, cycle: int, optimizer: Any) -> Position | None:
        """Checkpoints from now on hold ``optimizer`` (built) as phase ``cycle``'s. On the first
        call of a resumed run, restores the latest checkpoint (its optimizer only when it is this
        phase's) and returns its position (else None)."""
        self._optimizer = (f"optimizer_phase{cycle}", optimizer)
        first, self._begun = not self._begun, True
        if not first or self.latest is None:
            return None
        return self._restore(with_optimizer=True)

    def restore_finished(self) -> Position:
        """The model and counters of a run whose every epoch is in the latest checkpoint (killed
        before it wrote its model file)."""
        return self._restore(with_optimizer=False)

    def _restore(self, with_optimizer: bool) -> Position:
        assert self.latest is not None
        state = _state(self.latest)
        for name in (MODEL_FILE, OPTIMIZER_FILE):  # both, so that damage is never left for later
            files = state.get("files")
            check_written(
                self.latest / name, None if files is None else files.get(name), _remedy(self.latest)
            )
        _assign(self.model.variables, self.latest / MODEL_FILE, self.scope)
        if with_optimizer and self._optimizer is not None and state["optimizer"] == self._optimizer[0]:
            _assign(self._optimizer[1].variables, self.latest / OPTIMIZER_FILE, self.scope)
        position = Position(**{name: int(state[name]) for name in COUNTERS})
        log.info(
            "M1 resumed from %s: epoch %d, step %d of it, %d steps in all",
            self.latest,
            position.epoch,
            position.step_in_epoch,
            position.global_step,
        )
        return position

    def save(self, position: Position) -> None:
        """Writes ``ckpt-<global step>`` (replacing one of the same step) and keeps the latest two.
        The variables must hold the training state (on JAX: written back from the train step)."""
        if self._optimizer is None:
            raise RuntimeError("TrainingCheckpoints.save: call begin_phase first (it names the optimizer)")
        name, optimizer = self._optimizer
        final = self.directory / f"ckpt-{position.global_step}"
        with atomic_dir(final) as tmp:
            _write_values(Path(tmp) / MODEL_FILE, self.model.variables)
            _write_values(Path(tmp) / OPTIMIZER_FILE, optimizer.variables)
            files = {file: file_entry(Path(tmp) / file) for file in (MODEL_FILE, OPTIMIZER_FILE)}
            state = {"optimizer": name, **dataclasses.asdict(position), "files": files}
            (Path(tmp) / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        self.latest = final
        for old in _checkpoints(self.directory)[:-KEEP]:
            shutil.rmtree(old)


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint folder of ``directory`` with the most steps (None without one)."""
    found = _checkpoints(Path(directory))
    return found[-1] if found else None


def _checkpoints(directory: Path) -> list[Path]:
    """The checkpoint folders of ``directory``, fewest steps first (temporary folders of an
    interrupted save have other names, so one named ``ckpt-<step>`` without its ``state.json`` was
    damaged after it was written: ``_state`` says so rather than skipping it)."""
    if not directory.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in directory.iterdir()
        if (match := _NAME.fullmatch(path.name)) and path.is_dir()
    ]
    return [path for _, path in sorted(found)]


def _refuse_tf_train_checkpoints(directory: Path) -> None:
    """One line, never a silent restart, for a run directory checkpointed by an earlier version
    (``tf.train.Checkpoint``: a ``checkpoint`` index file beside ``ckpt-N.index`` files)."""
    if (directory / "checkpoint").is_file() or any(directory.glob("ckpt-*.index")):
        raise errors.ModelConfigError(
            f"{directory} holds M1 checkpoints in the tf.train format of an earlier version of geoloc; "
            "remove that folder to train M1 from the start, or finish the run with the earlier version"
        )


def _remedy(checkpoint: Path) -> str:
    """What to do about a damaged checkpoint: resume from the one before it, when the run kept one,
    else train M1 from the first step (``--force_stages=m1`` alone would resume from it again)."""
    earlier = [path for path in _checkpoints(checkpoint.parent) if path != checkpoint][-1:]
    if earlier:
        return (
            f"delete the folder {checkpoint} to resume from {earlier[0].name}, or the folder "
            f"{checkpoint.parent} to train M1 from the start"
        )
    return f"delete the folder {checkpoint.parent} to train M1 from the start"


def _state(checkpoint: Path) -> dict:
    """``state.json`` of ``checkpoint``: its counters as ints; ``WrittenFileError`` when it is not
    whole (it is the manifest of the checkpoint's files, so nothing else can vouch for it)."""
    path = checkpoint / STATE_FILE
    try:
        state = json.loads(path.read_text())
        return {
            **state,
            **{name: int(state[name]) for name in COUNTERS},
            "optimizer": str(state["optimizer"]),
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        reason = f"no {error}" if isinstance(error, KeyError) else errors.first_line(error)
        raise WrittenFileError(
            f"{path}: not a checkpoint state ({reason}; changed since it was written); {_remedy(checkpoint)}"
        ) from None


def _write_values(path: Path, variables: list) -> None:
    np.savez(path, *[np.asarray(variable.numpy()) for variable in variables])  # arr_<position>


def _assign(variables: list, path: Path, scope: Callable[[], ContextManager[Any]]) -> None:
    """Assigns the values of ``path`` (``_write_values``) to ``variables``, position by position."""
    with np.load(path) as values:
        if len(values.files) != len(variables):
            raise errors.CheckpointError(
                f"{path} holds {len(values.files)} values; expected {len(variables)} (the same "
                "M1 settings as the run that wrote it)"
            )
        with scope():
            for i, variable in enumerate(variables):
                value = values[f"arr_{i}"]
                if tuple(value.shape) != tuple(variable.shape):
                    raise errors.CheckpointError(
                        f"{path}: value {i} ({variable.path}) has shape {value.shape}; expected "
                        f"{tuple(variable.shape)} (the same M1 settings as the run that wrote it)"
                    )
                variable.assign(value)


def read_history(out_dir: Path, before_epoch: int) -> list[dict]:
    """The records of the epochs before ``before_epoch`` in ``out_dir/history.json``.

    A kill between writing history.json and the epoch's last checkpoint leaves a record of an epoch
    that is trained again: only the epochs the checkpoint holds are kept.
    """
    path = Path(out_dir) / HISTORY_FILE
    try:
        history = json.loads(path.read_text()) if path.exists() else []
        return [record for record in history if int(record["epoch"]) < before_epoch]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WrittenFileError(
            f"{path}: not M1's epoch records ({errors.first_line(error)}; changed since it was written); "
            f"delete it and the folder {Path(out_dir) / 'checkpoints'} to train M1 from the start"
        ) from None


def write_history(out_dir: Path, history: list[dict]) -> None:
    write_text_atomic(Path(out_dir) / HISTORY_FILE, json.dumps(history, indent=2))
