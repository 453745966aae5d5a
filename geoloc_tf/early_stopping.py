"""What the epoch loop's early stopping (``geoloc_tf.epoch_loop.EpochLoop``) can watch on
validation, shared by that loop and by the settings of the models it trains (M2's and M3's
``early_stopping_metric``). Its own module, free of TensorFlow, so that the configs (read when flags
are parsed) and the loop both import it from below, and neither imports the other.

Appendix A.2 stops on "a sustained decrease in validation accuracy (Caruana et al., 2001)":
"accuracy"; "loss" (the cross-entropy) is far less noisy where cell accuracy is a few percent.
"""

from __future__ import annotations

#: The validation figures early stopping can watch.
EARLY_STOPPING_METRICS: tuple[str, ...] = ("accuracy", "loss")
