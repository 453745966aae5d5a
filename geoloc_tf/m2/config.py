"""The frozen configuration of M2 (architecture and training), each number with its source."""

from __future__ import annotations

import dataclasses

from geoloc_tf import errors

#: Inputs beyond the paper that M2 can append (the paper's suggested future work, §5 / Table 4).
EXTRA_INPUTS: tuple[str, ...] = ("outdoor",)
#: What early stopping of M2 and M3 can watch on validation (``geoloc_tf.fit.EpochLoop``).
EARLY_STOPPING_METRICS: tuple[str, ...] = ("accuracy", "loss")
#: Reading of Table 2 row 1 ("Input, N+4, ReLU"); see ``M2Config.input_activation``.
INPUT_ACTIVATIONS: tuple[str | None, ...] = (None, "relu")


@dataclasses.dataclass(frozen=True)
class M2Config:
    """M2 of §3.2 / Table 2 / appendix A.2. Field names match the runner's ``--m2_*`` flags.

    top_k: entries kept by operator (1) (§3.2, Figure 3: "only the top 10").
    hidden_units: units of each of the three hidden blocks (Table 2: 542*3 = 1626).
    dropout: dropout rate of every hidden block (Table 2: "50% drop-out").
    input_activation: Table 2 row 1 lists "ReLU" for the input layer. The input layer has no
        weights, and a ReLU there would zero every negative time feature (T_i is centred on 0 by
        §3.2, so half of all hours, days and months), throwing away exactly the information M2
        exists to use; we therefore read the row as describing the layer type, not a transform, and
        default to None (identity). "relu" reproduces the literal table for comparison.
    m1_prior: beyond the paper: the output softmax takes, besides the last hidden block's logits
        (then zero-initialized), the log of M1's distribution rebuilt from operator (1)'s output
        (its top-k probabilities, the remaining mass spread evenly; ``geoloc_tf.layers.
        SparseLogPrior``), so M2 starts as M1 and learns a correction from the time (and the
        confidence |p0|). The paper's M2 (False) must relearn the
        map from the N + 1 sparse inputs back onto the N cells; with millions of training photos
        (appendix A: the 2.7 M M1-validation photos) that is cheap, with a few thousand (the demo:
        about 9 photos per cell) it costs more accuracy than the time adds.
    extra_inputs: beyond the paper: "outdoor" appends the photo's outdoor probability (the
        Places365 indoor/outdoor score of §4.1.2), the paper's suggested future work.
    learning_rates: Adam learning rates, one phase each (appendix A.2: 0.005 then 0.001).
    boosting_rounds: re-weighted passes of the "initial iterations of Adaboost" (appendix A.2);
        0 turns boosting off. See ``geoloc_tf.m2.boosting`` for the reading.
    boosting_epochs: epochs of each boosting pass (not in the paper: one, a short pass).
    batch_size: photos per batch (not in the paper).
    max_epochs: upper bound on epochs of each Adam phase (early stopping usually ends sooner).
    early_stopping_patience: epochs without a new best validation accuracy that end a phase
        (appendix A.2: "a sustained decrease in validation accuracy"); best weights are restored.
    early_stopping_metric: "accuracy" (appendix A.2: validation accuracy) or "loss" (validation
        cross-entropy: much less noisy where cell accuracy is a few percent on a few thousand
        photos, as on the demo).
    seed: seeds Keras, numpy and TF (weights, dropout, shuffling) for reproducible runs.
    """

    top_k: int = 10
    hidden_units: int = 1626
    dropout: float = 0.5
    input_activation: str | None = None
    m1_prior: bool = False
    extra_inputs: tuple[str, ...] = ()
    learning_rates: tuple[float, ...] = (0.005, 0.001)
    boosting_rounds: int = 2
    boosting_epochs: int = 1
    batch_size: int = 512
    max_epochs: int = 100
    early_stopping_patience: int = 5
    early_stopping_metric: str = "accuracy"
    seed: int = 0

    def __post_init__(self) -> None:
        def fail(field: str, expected: str) -> None:
            raise errors.ModelConfigError(
                f"M2Config.{field}={getattr(self, field)!r}: expected {expected}")

        if self.top_k < 1:
            fail("top_k", ">= 1")
        if self.hidden_units < 1:
            fail("hidden_units", ">= 1")
        if not 0.0 <= self.dropout < 1.0:
            fail("dropout", "0 <= dropout < 1")
        if self.input_activation not in INPUT_ACTIVATIONS:
            fail("input_activation", f"one of {INPUT_ACTIVATIONS}")
        if any(name not in EXTRA_INPUTS for name in self.extra_inputs):
            fail("extra_inputs", f"a subset of {EXTRA_INPUTS}")
        if not self.learning_rates or any(rate <= 0 for rate in self.learning_rates):
            fail("learning_rates", "a non-empty tuple of positive rates")
        if self.boosting_rounds < 0:
            fail("boosting_rounds", ">= 0")
        if self.boosting_epochs < 1:
            fail("boosting_epochs", ">= 1")
        if self.batch_size < 1:
            fail("batch_size", ">= 1")
        if self.max_epochs < 1:
            fail("max_epochs", ">= 1")
        if self.early_stopping_patience < 1:
            fail("early_stopping_patience", ">= 1")
        if self.early_stopping_metric not in EARLY_STOPPING_METRICS:
            fail("early_stopping_metric", f"one of {EARLY_STOPPING_METRICS}")
