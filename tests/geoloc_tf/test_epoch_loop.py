"""The epoch loop shared by M2 and M3: which epoch's weights it keeps, by accuracy or by loss."""

import json

import keras
import numpy as np
import pytest

from geoloc_tf.epoch_loop import EpochLoop


def tiny_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="softmax")], name="tiny")
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, x, y


@pytest.mark.parametrize("monitor", ["accuracy", "loss"])
def test_keeps_the_best_epoch_of_the_monitored_figure_and_the_start(monitor):
    model, x, y = tiny_problem()
    loop = EpochLoop(model, (x, y, np.ones(len(y), np.float32)), batch_size=32, patience=50, monitor=monitor)
    loop.score_start()
    loop.run_phase("adam", 0.05, 6, lambda epoch: (x, y, np.ones(len(y), np.float32)))
    history = loop.finish()
    records = history.epochs
    assert records[0].phase == "start" and np.isnan(records[0].loss) and len(records) == 7
    if monitor == "loss":
        best = min(records, key=lambda r: r.val_loss)
    else:
        best = max(records, key=lambda r: (r.val_accuracy, -r.epoch))  # first of equal bests
    assert history.best_epoch == best.epoch and history.monitor == monitor
    assert (history.best_val_loss, history.best_val_accuracy) == (best.val_loss, best.val_accuracy)
    kept = model.evaluate(x, y, verbose=0, return_dict=True)  # the kept weights are in the model
    assert kept["loss"] == pytest.approx(best.val_loss, rel=1e-5)
    as_json = json.loads(json.dumps(history.to_dict(), allow_nan=False))  # strict JSON
    assert as_json["epochs"][0]["loss"] is None


def test_unknown_monitor_is_refused():
    model, x, y = tiny_problem()
    with pytest.raises(ValueError, match="monitor='auc'"):
        EpochLoop(model, (x, y, np.ones(len(y), np.float32)), 32, 3, monitor="auc")
