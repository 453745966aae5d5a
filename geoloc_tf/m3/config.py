"""The frozen configuration of M3 (paper §3.3, Figure 3), each number with its source."""

from __future__ import annotations

import dataclasses

from geoloc_tf import errors
from geoloc_tf.m2.config import EARLY_STOPPING_METRICS, M2Config


@dataclasses.dataclass(frozen=True)
class M3Config:
    """M3 of §3.3 / Figure 3. Field names match the runner's ``--m3_*`` flags where they exist.

    m2: the per-photo part, "M2 concatenated with M3 layers" (Figure 3): operator (1), time
        features and Table 2's hidden blocks; must match the trained M2 when ``init_from_m2``.
        Its training fields (learning rates, boosting) are not used by M3.
    album_size: photos per album (§3.3: "albums of size 24"), zero-padded and masked.
    lstm_units: units of each LSTM direction (not given in the paper; 256).
    init_from_m2: start the per-photo blocks from the trained M2's weights (Figure 3 stacks M3 on
        a trained M2).
    freeze_m2: keep the per-photo part started from M2 fixed (weights and batch-norm statistics)
        and train only the LSTM and its correction: M3 then learns only what the album adds.
        Not in the paper (which does not say); for M2/M3 training sets of a few thousand albums,
        where fine-tuning all of M2 at once forgets what M2 learned faster than the LSTM learns.
    residual_output: M3's softmax takes M2's output logits plus a small correction from
        the LSTM (``geoloc_tf.m3.model``), so M3 starts as M2; False: a fresh softmax on the LSTM.
    album_evidence: with ``residual_output``, add to every photo's logits the log of the mean
        softmax over its album's photos, times a learned weight that starts at 1
        (``geoloc_tf.layers.AlbumEvidence``). Not in the paper: its Figure 3 has the LSTM alone
        carry album information, which the demo's LSTM did not learn to do (M3 level with M2,
        while averaging M2 over each user beat M2).
    learning_rate: Adam learning rate (not given for M3; appendix A.2's final M2 rate, 0.001).
    batch_size: albums per batch (not in the paper).
    max_epochs: upper bound on epochs; each epoch is one random album per user (§3.3).
    early_stopping_metric: "accuracy" or "loss" (validation cross-entropy), as for M2.
    early_stopping_patience: epochs without a new best validation accuracy that stop training
        (as M2, appendix A.2); best weights are restored.
    seed: seeds Keras, numpy and TF for reproducible runs.
    """

    m2: M2Config = dataclasses.field(default_factory=M2Config)
    album_size: int = 24
    lstm_units: int = 256
    init_from_m2: bool = True
    freeze_m2: bool = False
    residual_output: bool = True
    album_evidence: bool = False
    learning_rate: float = 0.001
    batch_size: int = 64
    max_epochs: int = 100
    early_stopping_patience: int = 5
    early_stopping_metric: str = "accuracy"
    seed: int = 0

    def __post_init__(self) -> None:
        for field in ("album_size", "lstm_units", "batch_size", "max_epochs",
                      "early_stopping_patience"):
            if getattr(self, field) < 1:
                raise errors.ModelConfigError(
                    f"M3Config.{field}={getattr(self, field)!r}: expected >= 1")
        if self.learning_rate <= 0:
            raise errors.ModelConfigError(
                f"M3Config.learning_rate={self.learning_rate!r}: expected > 0")
        if self.early_stopping_metric not in EARLY_STOPPING_METRICS:
            raise errors.ModelConfigError(
                f"M3Config.early_stopping_metric={self.early_stopping_metric!r}: expected one of "
                f"{EARLY_STOPPING_METRICS}")
        if self.album_evidence and not self.residual_output:
            raise errors.ModelConfigError(
                "M3Config.album_evidence=True needs residual_output=True: the album's evidence is "
                "added to M2's output logits, which only the residual output keeps")
        if self.freeze_m2 and not self.init_from_m2:
            raise errors.ModelConfigError(
                "M3Config.freeze_m2=True needs init_from_m2=True: there is no trained M2 part to "
                "keep fixed")
