"""The configuration of M3 (paper §3.3, Figure 3): each setting declared once, with its source.

Field names are the runner's flag suffixes (``lstm_units`` is ``--m3_lstm_units``). M3's per-photo
part is M2's (Figure 3: "M2 concatenated with M3 layers"), so the functions that build M3 take the
run's ``M2Config`` beside this one. Imports neither TensorFlow nor numpy.
"""

from __future__ import annotations

import dataclasses

from geoloc_tf.early_stopping import EARLY_STOPPING_METRICS
from mesh.settings import SettingError, check_settings, setting


@dataclasses.dataclass(frozen=True)
class M3Config:
    """M3 of §3.3 / Figure 3.

    freeze_m2: not in the paper (which does not say); for M2/M3 training sets of a few thousand
        albums, where fine-tuning all of M2 at once forgets what M2 learned faster than the LSTM
        learns.
    residual_output: M3's softmax takes M2's output logits plus a small correction from the LSTM
        (``geoloc_tf.m3.model``), so M3 starts as M2; False: a fresh softmax on the LSTM.
    album_evidence: not in the paper: its Figure 3 has the LSTM alone carry album information,
        which the demo's LSTM did not learn to do (M3 level with M2, while averaging M2 over each
        user beat M2). ``geoloc_tf.layers.AlbumEvidence``.
    """

    album_size: int = setting(24, "Photos per album (§3.3: 24), zero-padded and masked.", minimum=1)
    lstm_units: int = setting(256, "Units of each LSTM direction (not given in the paper).", minimum=1)
    init_from_m2: bool = setting(
        True, "Initialize the per-photo blocks from the trained M2 (Figure 3 stacks M3 on a trained M2)."
    )
    freeze_m2: bool = setting(
        False,
        "Beyond the paper: keep the per-photo part started from M2 fixed and train only the "
        "LSTM and its correction (for small M2/M3 training sets; needs --m3_init_from_m2).",
    )
    residual_output: bool = setting(
        True,
        "M3's softmax takes M2's output logits plus a small correction from the LSTM, "
        "so M3 starts near the trained M2 (our reading of Figure 3); False: a fresh softmax on the "
        "LSTM.",
    )
    album_evidence: bool = setting(
        False,
        "Beyond the paper: with --m3_residual_output, every photo's logits also get the log "
        "of the mean softmax over its album, times a learned weight starting at 1 (the LSTM alone "
        "did not learn to pool an album's evidence on the demo).",
    )
    learning_rate: float = setting(
        0.001,
        "Adam learning rate (not given for M3; appendix A.2's final M2 rate).",
        minimum=0.0,
        min_exclusive=True,
    )
    batch_size: int = setting(64, "Albums per global batch.", minimum=1)
    max_epochs: int = setting(
        100,
        "Upper bound on epochs (each: one random album per user, §3.3); early stopping usually ends sooner.",
        minimum=1,
    )
    early_stopping_patience: int = setting(
        5, "Epochs of falling validation accuracy that stop training, restoring the best weights.", minimum=1
    )
    early_stopping_metric: str = setting(
        "accuracy",
        "What early stopping watches on validation: 'accuracy' or 'loss', as for M2.",
        choices=EARLY_STOPPING_METRICS,
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.album_evidence and not self.residual_output:
            raise SettingError(
                "M3Config",
                "{album_evidence} needs {residual_output}: the album's evidence is added "
                "to M2's output logits, which only the residual output keeps",
                ("album_evidence", "residual_output"),
            )
        if self.freeze_m2 and not self.init_from_m2:
            raise SettingError(
                "M3Config",
                "{freeze_m2} needs {init_from_m2}: there is no trained M2 part to keep fixed",
                ("freeze_m2", "init_from_m2"),
            )
