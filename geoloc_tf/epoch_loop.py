"""The epoch loop shared by M2 and M3: phases, early stopping on validation accuracy, TensorBoard.

Appendix A.2: "Early stopping is used to detect a sustained decrease in validation accuracy
(Caruana et al., 2001)." A phase ends after ``patience`` epochs without a new best of the monitored
validation figure (``monitor``: "accuracy", the paper's, or "loss", the cross-entropy, which is far
less noisy where cell accuracy is a few percent on a few thousand photos); the best weights seen
over the whole run (all phases) are restored at the end.

Training runs one ``model.fit(epochs=1)`` per epoch rather than one long ``fit`` because M3 draws a
fresh random album per user every epoch (§3.3) and M2's boosting passes change the sample weights;
the compiled train step is reused between calls. Scalars go to TensorBoard with the epoch counted
across phases: loss, accuracy, val_loss, val_accuracy, learning_rate, boosting_round.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from geoloc_tf.early_stopping import EARLY_STOPPING_METRICS as MONITORS
from mesh.progress import Progress

log = logging.getLogger(__name__)

#: One epoch's training data: (inputs, labels, sample weights).
EpochData = tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]


@dataclasses.dataclass
class EpochRecord:
    """What one epoch did (also the TensorBoard scalars)."""

    epoch: int
    phase: str
    learning_rate: float
    boosting_round: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclasses.dataclass
class TrainingHistory:
    """Every epoch of a run, the boosting steps (M2) and which epoch's weights were kept."""

    epochs: list[EpochRecord] = dataclasses.field(default_factory=list)
    boosting: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = float("-inf")  # of the kept epoch
    best_val_loss: float = float("inf")  # of the kept epoch
    monitor: str = "accuracy"  # what chose the kept epoch
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the run directory (the "start" record's missing training loss and
        accuracy, NaN here, become null: strict JSON has no NaN)."""
        data = dataclasses.asdict(self)
        for record in [data, *data["epochs"]]:
            for key, value in record.items():
                if isinstance(value, float) and not np.isfinite(value):
                    record[key] = None
        return data


class EpochLoop:
    """Runs phases of epochs on a compiled model, tracking the best validation accuracy."""

    def __init__(
        self,
        model: keras.Model,
        validation: EpochData,
        batch_size: int,
        patience: int,
        tensorboard_dir: str | None = None,
        accuracy_key: str = "accuracy",
        monitor: str = "accuracy",
    ) -> None:
        if monitor not in MONITORS:
            raise ValueError(f"EpochLoop(monitor={monitor!r}): expected one of {MONITORS}")
        self.model = model
        self.validation = validation
        self.batch_size = batch_size
        self.patience = patience
        self.accuracy_key = accuracy_key
        self.history = TrainingHistory(monitor=monitor)
        self._best_weights: list[np.ndarray] | None = None
        self._writer = tf.summary.create_file_writer(tensorboard_dir) if tensorboard_dir is not None else None
        self._start = time.perf_counter()

    def run_phase(
        self,
        phase: str,
        learning_rate: float,
        epochs: int,
        draw: Callable[[int], EpochData],
        boosting_round: int = 0,
        early_stopping: bool = True,
    ) -> None:
        """Up to ``epochs`` epochs at ``learning_rate``; ``draw(epoch)`` gives each epoch's data."""
        self.model.optimizer.learning_rate.assign(learning_rate)
        since_best = 0
        # A bar over the phase's epochs on a terminal; elsewhere the epoch lines (``_log``) say it.
        desc = f"{self.model.name.upper()} {phase}"
        with Progress(epochs, "epochs", desc, log=log, every_s=math.inf, final_line=False) as progress:
            for _ in range(epochs):
                epoch = len(self.history.epochs)
                inputs, labels, weights = draw(epoch)
                start = time.perf_counter()
                logs = self.model.fit(
                    inputs,
                    labels,
                    sample_weight=weights,
                    batch_size=self.batch_size,
                    epochs=1,
                    shuffle=True,
                    verbose=0,
                    validation_data=self.validation,
                ).history
                record = EpochRecord(
                    epoch=epoch,
                    phase=phase,
                    learning_rate=float(learning_rate),
                    boosting_round=boosting_round,
                    loss=float(logs["loss"][-1]),
                    accuracy=float(logs[self.accuracy_key][-1]),
                    val_loss=float(logs["val_loss"][-1]),
                    val_accuracy=float(logs["val_" + self.accuracy_key][-1]),
                    seconds=time.perf_counter() - start,
                )
                self.history.epochs.append(record)
                self._log(record)
                progress.update(1)
                if self._consider(record):
                    since_best = 0
                else:
                    since_best += 1
                    if early_stopping and since_best >= self.patience:
                        break

    def score_start(self) -> None:
        """Scores the untrained model on validation as a candidate for the kept weights (a record
        of phase "start", no training loss). Where the start is already a model (M2 with
        ``M2Config.m1_prior`` starts as M1; M3 with its residual output starts near M2), a run
        that never beats it on validation keeps it rather than its least bad epoch."""
        inputs, labels, weights = self.validation
        start = time.perf_counter()
        logs = self.model.evaluate(
            inputs, labels, sample_weight=weights, batch_size=self.batch_size, verbose=0, return_dict=True
        )
        record = EpochRecord(
            epoch=len(self.history.epochs),
            phase="start",
            learning_rate=0.0,
            boosting_round=0,
            loss=float("nan"),
            accuracy=float("nan"),
            val_loss=float(logs["loss"]),
            val_accuracy=float(logs[self.accuracy_key]),
            seconds=time.perf_counter() - start,
        )
        self.history.epochs.append(record)
        self._log(record)
        self._consider(record)

    def _consider(self, record: EpochRecord) -> bool:
        """Keeps the model's weights if ``record`` is the best monitored figure so far."""
        best = self.history
        if best.monitor == "loss":
            better = record.val_loss < best.best_val_loss
        else:
            better = record.val_accuracy > best.best_val_accuracy
        if better:
            best.best_val_accuracy, best.best_val_loss = record.val_accuracy, record.val_loss
            best.best_epoch = record.epoch
            self._best_weights = self.model.get_weights()
        return better

    def log_boosting(self, boosting_round: int, error: float, alpha: float) -> None:
        """Record one boosting step (M2)."""
        self.history.boosting.append({"round": boosting_round, "error": error, "alpha": alpha})
        if self._writer is not None:
            with self._writer.as_default():
                tf.summary.scalar("boosting/error", error, step=boosting_round)
                tf.summary.scalar("boosting/alpha", alpha, step=boosting_round)
            self._writer.flush()

    def finish(self) -> TrainingHistory:
        """Restore the best weights seen and close the TensorBoard writer."""
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)
        if self._writer is not None:
            self._writer.close()
        self.history.seconds = time.perf_counter() - self._start
        return self.history

    def _log(self, record: EpochRecord) -> None:
        """One progress line per epoch (M2 and M3 have no other), then the TensorBoard scalars."""
        training = (
            ""
            if not np.isfinite(record.loss)
            else f"loss {record.loss:.3f}, accuracy {record.accuracy:.3f}, "
        )
        log.info(
            "%s epoch %d [%s]: %sval_loss %.3f, val_accuracy %.3f, %.1f s",
            self.model.name.upper(),
            record.epoch,
            record.phase,
            training,
            record.val_loss,
            record.val_accuracy,
            record.seconds,
        )
        if self._writer is None:
            return
        with self._writer.as_default():
            for name in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "boosting_round"):
                value = float(getattr(record, name))
                if np.isfinite(value):  # the "start" record has no training loss
                    tf.summary.scalar(name, value, step=record.epoch)
        self._writer.flush()


def compile_model(model: keras.Model, learning_rate: float, *, masked: bool = False) -> None:
    """Adam (appendix A.2) on sparse categorical cross-entropy, with accuracy: M2's and M3's one
    compile. ``masked`` (M3's albums): accuracy is weighted by the sample weights, so padded album
    positions (weight 0) do not count."""
    accuracy = {"weighted_metrics": ["accuracy"]} if masked else {"metrics": ["accuracy"]}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        **accuracy,
    )
