"""The configuration of M2 (architecture and training): each setting declared once, with its source.

Field names are the runner's flag suffixes (``hidden_units`` is ``--m2_hidden_units``); the runner
derives its flags from these declarations (``mesh.settings``). Imports neither TensorFlow nor numpy.
The run's one seed (``--data_seed``) is passed to the functions that train, not stored here.
"""

from __future__ import annotations

import dataclasses

from geoloc_tf.early_stopping import EARLY_STOPPING_METRICS
from mesh.settings import check_settings, setting

#: Cells kept per photo by operator (1), the sparsify-normalize layer (§3.2, Figure 3: "only the
#: top 10 mesh cell probabilities"): M2's default ``top_k``, and so the cells M1's stored
#: predictions keep by default (``PredictConfig.top_k``). The one home of this number.
DEFAULT_TOP_K = 10
#: Inputs beyond the paper that M2 can append (the paper's suggested future work, §5 / Table 4).
EXTRA_INPUTS: tuple[str, ...] = ("outdoor",)


def non_empty(values: tuple) -> str | None:
    return None if len(values) else "at least one value is needed"


@dataclasses.dataclass(frozen=True)
class M2Config:
    """M2 of §3.2 / Table 2 / appendix A.2.

    input_activation: Table 2 row 1 lists "ReLU" for the input layer. The input layer has no
        weights, and a ReLU there would zero every negative time feature (T_i is centred on 0 by
        §3.2, so half of all hours, days and months), throwing away exactly the information M2
        exists to use; we therefore read the row as describing the layer type, not a transform, and
        default to None (identity). "relu" reproduces the literal table for comparison.
    m1_prior: the output softmax takes, besides the last hidden block's logits (then
        zero-initialized), the log of M1's distribution rebuilt from operator (1)'s output (its
        top-k probabilities, the remaining mass spread evenly; ``geoloc_tf.layers.SparseLogPrior``),
        so M2 starts as M1 and learns a correction from the time (and the confidence |p0|). The
        paper's M2 (False) must relearn the map from the N + 1 sparse inputs back onto the N cells;
        with millions of training photos (appendix A: the 2.7 M M1-validation photos) that is
        cheap, with a few thousand (the demo: about 9 photos per cell) it costs more accuracy than
        the time adds.
    boosting_rounds: see ``geoloc_tf.m2.boosting`` for the reading of appendix A.2's "initial
        iterations of Adaboost".
    """

    top_k: int = setting(
        DEFAULT_TOP_K, "Entries kept by the sparsify-normalize layer (§3.2: top 10).", minimum=1
    )
    hidden_units: int = setting(1626, "Units of each hidden block (Table 2: 542*3).", minimum=1)
    dropout: float = setting(
        0.5,
        "Dropout rate of every hidden block (Table 2: 50 %).",
        minimum=0.0,
        maximum=1.0,
        max_exclusive=True,
    )
    input_activation: str | None = setting(
        None,
        "Activation of M2's input layer: unset (identity, our reading of Table 2 row 1) or "
        "'relu' (the literal table, which zeroes negative time features).",
        choices=("relu",),
    )
    learning_rates: tuple[float, ...] = setting(
        (0.005, 0.001),
        "Adam learning rates, one phase each (appendix A.2: 0.005 then 0.001).",
        minimum=0.0,
        min_exclusive=True,
        check=non_empty,
    )
    boosting_rounds: int = setting(
        2,
        "Rounds of AdaBoost-style re-weighting of misclassified photos before the Adam phases "
        "(appendix A.2 'initial iterations of Adaboost'; 0 turns it off).",
        minimum=0,
    )
    boosting_epochs: int = setting(
        1, "Epochs of each boosting pass (not in the paper: one, a short pass).", minimum=1
    )
    batch_size: int = setting(512, "Global batch size.", minimum=1)
    max_epochs: int = setting(
        100, "Upper bound on epochs per phase; early stopping usually ends sooner.", minimum=1
    )
    early_stopping_patience: int = setting(
        5,
        "Epochs of falling validation accuracy that stop a phase, restoring the best weights (appendix A.2).",
        minimum=1,
    )
    early_stopping_metric: str = setting(
        "accuracy",
        "What early stopping watches on validation: 'accuracy' (appendix A.2) or 'loss' "
        "(the cross-entropy: far less noisy where cell accuracy is a few percent on a few thousand "
        "photos).",
        choices=EARLY_STOPPING_METRICS,
    )
    m1_prior: bool = setting(
        False,
        "Beyond the paper: M2's softmax adds the log of M1's renormalized top-k probabilities "
        "to its (zero-initialized) output logits, so M2 starts as M1 and learns a correction from the "
        "time. For M2 training sets too small to relearn the map onto the cells (the demo: ~9 photos "
        "per cell); the paper's M2 had millions.",
    )
    extra_inputs: tuple[str, ...] = setting(
        (),
        "Inputs beyond the paper, appended to M2's input: 'outdoor' (the photo's outdoor "
        "probability; the paper's suggested future work).",
        choices=EXTRA_INPUTS,
    )

    def __post_init__(self) -> None:
        check_settings(self)
