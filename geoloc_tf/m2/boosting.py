"""The "initial iterations of Adaboost" of appendix A.2, read as SAMME re-weighting of one network.

Appendix A.2: "M2 is trained using He initializations, initial iterations of Adaboost (Freund &
Schapire, 1995), followed by ADAM at learning rates of 0.005 and 0.001." It does not say what the
weak learners are or how they are combined. Our reading, and why:

* One network, not an ensemble. Table 2 describes a single network, M3 reuses "M2" as one set of
  layers (Figure 3), and the results compare one M2 against M1; nothing is said of combining
  several models. So boosting is a warm-up of the same network: "initial iterations".
* Multi-class weights by SAMME (Zhu, Zou, Rosset & Hastie 2009), the multi-class generalization of
  Freund & Schapire's AdaBoost: with weighted error ``err`` over K classes,
  ``alpha = log((1 - err) / err) + log(K - 1)`` and every misclassified photo's weight is multiplied
  by ``exp(alpha)``. Plain two-class AdaBoost would need err < 1/2, which a 538- or 6565-way
  classifier starting from M1's ~25 % accuracy never reaches; SAMME only needs err < 1 - 1/K.
* Schedule: one uniform pass (AdaBoost's first learner), then ``boosting_rounds`` times: re-weight
  from the current network's training errors, train a short pass with those sample weights. The
  Adam phases that follow ("followed by ADAM") train on uniform weights again, so that the final
  softmax estimates the natural class frequencies (appendix C checks that class bias).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike

from geoloc_tf import errors

# alpha below this counts as 0: err = 1 - 1/K can come out a rounding error above it.
_CHANCE_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class BoostingStep:
    """One SAMME update: the weighted training error, the learner weight alpha, the new weights."""

    error: float
    alpha: float
    weights: np.ndarray

    @property
    def useful(self) -> bool:
        """False when the learner is no better than chance (alpha <= 0) or perfect (error 0)."""
        return self.alpha > 0 and self.error > 0


def samme_update(weights: ArrayLike, misclassified: ArrayLike, num_classes: int) -> BoostingStep:
    """SAMME re-weighting: misclassified photos gain ``exp(alpha)``; weights are rescaled to mean 1.

    Mean 1 (rather than AdaBoost's sum 1) keeps the Keras loss on its usual scale. When the learner
    is not better than chance or is perfect, the weights are returned unchanged.
    """
    w = np.asarray(weights, dtype=np.float64)
    wrong = np.asarray(misclassified, dtype=bool)
    if w.shape != wrong.shape or w.ndim != 1:
        raise errors.ModelConfigError(
            f"samme_update: weights {w.shape} and misclassified {wrong.shape} must be equal 1-d"
        )
    if num_classes < 2:
        raise errors.ModelConfigError(f"samme_update: num_classes={num_classes}, expected >= 2")
    error = float(np.sum(w[wrong]) / np.sum(w))
    if error <= 0.0:
        return BoostingStep(error=0.0, alpha=0.0, weights=w / w.mean())
    alpha = float(np.log((1.0 - error) / error) + np.log(num_classes - 1.0)) if error < 1 else 0.0
    if alpha <= _CHANCE_TOLERANCE:  # not better than chance (rounding aside): no update
        return BoostingStep(error=error, alpha=0.0, weights=w / w.mean())
    new = w * np.exp(alpha * wrong)
    return BoostingStep(error=error, alpha=alpha, weights=new / new.mean())
