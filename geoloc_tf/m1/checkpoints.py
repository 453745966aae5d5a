"""M1's training state on disk, so that a run killed at any step resumes where it stopped.

A ``tf.train.Checkpoint`` holds the model, the optimizer of the current phase (each Adagrad cycle
and the SGD phase has its own: ``optimizer_phase<cycle>``) and three counters: the epoch, the steps
done in it and the steps done in all. ``history.json`` holds one record per finished epoch. The
steps of an epoch are known in advance (the sampler's copies are a function of (seed, epoch) and
batches are full), so a resumed run skips the batches already trained and ends at the same step
count as an uninterrupted one. (Keras 3's ``BackupAndRestore`` restores the epoch but replays an
interrupted epoch from its first batch, which adds steps.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import tensorflow as tf

from geoloc_tf.run_layout import HISTORY_FILE
from mesh.atomic import write_text_atomic

log = logging.getLogger(__name__)

COUNTERS = ("epoch", "step_in_epoch", "global_step")


@dataclasses.dataclass
class Position:
    """Where training stands: the epoch, the steps done in it, the steps done in all."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


class TrainingCheckpoints:
    """The checkpoints of one training run in ``directory`` (the latest two are kept)."""

    def __init__(self, directory: Path, model: Any):
        self.directory = Path(directory)
        self.model = model
        self.counters = {
            name: tf.Variable(0, dtype=tf.int64, trainable=False, name=name) for name in COUNTERS
        }
        self.latest = tf.train.latest_checkpoint(str(self.directory))
        self._manager: tf.train.CheckpointManager | None = None

    @property
    def resuming(self) -> bool:
        return self.latest is not None

    def start_epoch(self) -> int:
        """The epoch the latest checkpoint stopped in (0 without one), read without restoring."""
        if self.latest is None:
            return 0
        reader = tf.train.load_checkpoint(self.latest)
        return int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))

    def begin_phase(self, cycle: int, optimizer: Any) -> Position | None:
        """Checkpoints from now on hold ``optimizer`` as phase ``cycle``'s. On the first call of a
        resumed run, restores the latest checkpoint and returns its position (else None)."""
        checkpoint = tf.train.Checkpoint(
            model=self.model, **self.counters, **{f"optimizer_phase{cycle}": optimizer}
        )
        first = self._manager is None
        self._manager = tf.train.CheckpointManager(checkpoint, str(self.directory), max_to_keep=2)
        if not (first and self.latest):
            return None
        return self._restore(checkpoint)

    def restore_finished(self) -> Position:
        """The model and counters of a run whose every epoch is in the latest checkpoint (killed
        before it wrote its model file)."""
        return self._restore(tf.train.Checkpoint(model=self.model, **self.counters))

    def _restore(self, checkpoint: tf.train.Checkpoint) -> Position:
        checkpoint.restore(self.latest).expect_partial()
        position = Position(**{name: int(v.numpy()) for name, v in self.counters.items()})
        log.info(
            "M1 resumed from %s: epoch %d, step %d of it, %d steps in all",
            self.latest,
            position.epoch,
            position.step_in_epoch,
            position.global_step,
        )
        return position

    def save(self, position: Position) -> None:
        if self._manager is None:
            raise RuntimeError("TrainingCheckpoints.save: call begin_phase first (it names the optimizer)")
        for name, variable in self.counters.items():
            variable.assign(getattr(position, name))
        self._manager.save(checkpoint_number=position.global_step)


def read_history(out_dir: Path, before_epoch: int) -> list[dict]:
    """The records of the epochs before ``before_epoch`` in ``out_dir/history.json``.

    A kill between writing history.json and the epoch's last checkpoint leaves a record of an epoch
    that is trained again: only the epochs the checkpoint holds are kept.
    """
    path = Path(out_dir) / HISTORY_FILE
    history = json.loads(path.read_text()) if path.exists() else []
    return [record for record in history if record["epoch"] < before_epoch]


def write_history(out_dir: Path, history: list[dict]) -> None:
    write_text_atomic(Path(out_dir) / HISTORY_FILE, json.dumps(history, indent=2))
