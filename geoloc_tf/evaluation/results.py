"""Every number of the report, computed once from stored predictions and the mesh.

The same code scores every model (M1, M2, M3, user/album averaging) from its prediction table
(§3.1.3), plus two rows that are not models: Table 6's "Best Possible" (``mesh.best_possible``: each
photo given its own cell) and a "Most Frequent Cell" baseline that predicts the commonest training
cell for every photo (what a classifier with no information about the image would do).

A point predictor (M1 kNN, ``geoloc_tf.retrieval.knn``: a place, not a cell) is scored by the
distance from its point, the same at both label points; it has no predicted class, so its class
bias (KL divergence, entropy: proportions of predicted cells, appendix C) is ``None``.

Each model is scored on all photos of its own table. Best possible and the baseline are scored on
the photos of the first model's table (the reference, normally M1). The Wilcoxon tests pair the
photos two tables share (matched by photo_id). The JSON-able ``Evaluation.results`` is what
``eval/results.json`` holds and what ``compare`` reads.

Every distance uses the configured Earth radius and every accuracy the configured threshold rule
(``EvalConfig.earth_radius_km``, ``threshold_rule``: the paper's 6372.795 km and "<=" by default);
``results["convention"]`` records them with the formula, so a reader knows which published numbers
the rows can sit beside.

Every error summary of a row (models, their outdoor rows, the most-frequent-cell baseline, the
leakage rows) is made by ``summarize``: the caller passes the row's errors and its photos' user
hashes, and gets the numbers with their 95 % intervals (``uncertainty``: a percentile bootstrap
over photographers, ``EvalConfig.bootstrap_samples`` resamples seeded by ``bootstrap_seed``; the
summary's ``interval`` is None with 0 resamples; ``results["bootstrap"]`` records the setting).
Best possible has none: it is the ceiling the mesh puts on any model on the same photos, a
reference line that no finding compares a model with. ``results["differences"]`` holds the paired
differences B - A the findings read (``paired_difference``: both rows on the same resampled
photographers): every Wilcoxon pair, the reference model against the most-frequent-cell baseline,
imagery against cell centroid per cell model, outdoor-only against all photos per model.

Two sections beyond the paper (``None`` when not computed):

- ``admin_accuracy``: country / region / sub-region / city accuracy of every model by offline
  reverse geocoding of its predicted point (``admin``), under ``EvalConfig.admin_rule`` (geoloc's
  rule or OSV-5M's, named in words), against the data set's admin columns for the photos that have
  them (``admin_truth``), else the reverse-geocoded true point, with the count of each.
- ``leakage``: when the models' training photos are given (``training``, ``leakage``), the test
  photos' ids and photographers found in training (an external set's ids by Flickr photo id, the
  count None, "unknown", where no Flickr id can be derived), and for every model the row on the
  photos whose photographer is absent from training beside the row on all photos.
- ``near_duplicates``: when the training photos' locations are known and
  ``EvalConfig.near_duplicate_km`` > 0, the test photos with a training photo within that
  great-circle distance (in all and per training split), and for every model the row on the photos
  with none beside the row on all photos.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from geoloc_tf.errors import EvaluationError
from geoloc_tf.evaluation import admin, metrics, uncertainty
from geoloc_tf.evaluation.leakage import (
    TrainingPhotos,
    any_split,
    leakage_counts,
    near_duplicate_counts,
    near_training,
    no_near_duplicate,
    unseen_photographers,
)
from geoloc_tf.evaluation.model_predictions import ModelPredictions, display_name, paired_rows
from geoloc_tf.evaluation.outdoor import known_mask, outdoor_mask
from geoloc_tf.evaluation.uncertainty import LEVEL, METHOD, Bootstrap, difference_interval
from geoloc_tf.run_configs import EvaluateConfig
from mesh import Mesh
from mesh.best_possible import best_possible
from mesh.geodesy import DISTANCE_FORMULA, THRESHOLD_RULES
from mesh.progress import Progress

#: Format of ``results.json``; bump when a field changes meaning.
RESULTS_VERSION = 1

#: Wilcoxon pairs (A, B) tested when both tables exist: B against A (§4.2 tests M2 against M1).
DEFAULT_WILCOXON_PAIRS: tuple[tuple[str, str], ...] = (
    ("m1", "m2"),
    ("m2", "m3"),
    ("m1", "m3"),
    ("m1", "user_averaging"),
    ("m1", "user_avg"),
    ("m1", "album_averaging"),
    ("m1", "album_avg"),
    ("m1", "m1_knn"),
    ("m1", "m1_cell_retrieval"),
)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What the evaluation computes. ``label_point`` is the one used by Tables 4, 6 and 7 and the
    Wilcoxon tests; the paper reports those with the imagery centroid after Table 3 showed it is
    better (§4.1.1). Table 3 always shows both."""

    split: str = "m23_val"
    thresholds_km: tuple[float, ...] = EvaluateConfig().thresholds_km
    outdoor_threshold: float = EvaluateConfig().outdoor_threshold
    label_point: str = "imagery"
    wilcoxon_pairs: tuple[tuple[str, str], ...] = DEFAULT_WILCOXON_PAIRS
    mesh_name: str = ""  # e.g. "Coarse Mesh": prefixes the row names as in Tables 6-7
    admin_accuracy: bool = True  # country/region/sub-region/city accuracy (``admin``; ~1 s to load)
    earth_radius_km: float = EvaluateConfig().earth_radius_km
    threshold_rule: str = EvaluateConfig().threshold_rule
    admin_rule: str = EvaluateConfig().admin_rule
    bootstrap_samples: int = EvaluateConfig().bootstrap_samples
    bootstrap_seed: int = EvaluateConfig().bootstrap_seed
    near_duplicate_km: float = EvaluateConfig().near_duplicate_km

    @classmethod
    def from_settings(cls, settings: EvaluateConfig, **fields: Any) -> "EvalConfig":
        """The evaluation the runner's evaluate section asks for (thresholds, outdoor threshold,
        Earth radius, threshold rule, admin rule, bootstrap, near-duplicate radius)."""
        return cls(
            thresholds_km=tuple(settings.thresholds_km),
            outdoor_threshold=settings.outdoor_threshold,
            earth_radius_km=settings.earth_radius_km,
            threshold_rule=settings.threshold_rule,
            admin_rule=settings.admin_rule,
            bootstrap_samples=settings.bootstrap_samples,
            bootstrap_seed=settings.bootstrap_seed,
            near_duplicate_km=settings.near_duplicate_km,
            **fields,
        )

    def bootstrap(self) -> Bootstrap:
        """The resampling of every interval (``uncertainty``): ``bootstrap_samples`` resamples (0:
        none), seeded by ``bootstrap_seed``."""
        return Bootstrap(int(self.bootstrap_samples), int(self.bootstrap_seed))

    def convention(self) -> dict[str, Any]:
        """How distances and accuracies were computed: ``results["convention"]``."""
        return {
            "earth_radius_km": float(self.earth_radius_km),
            "distance": DISTANCE_FORMULA,
            "threshold_rule": self.threshold_rule,
            "admin_rule": self.admin_rule,
        }


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The JSON-able results plus the per-photo arrays the plots need."""

    results: dict[str, Any]
    predictions: dict[str, ModelPredictions]
    errors_km: dict[str, NDArray[np.float64]]  # per model, at config.label_point
    true_cell: dict[str, NDArray[np.int64]]  # per model, -1 in dropped cells


def _outdoor_probs(pred: ModelPredictions, override: Mapping[str, float] | None) -> tuple[np.ndarray, str]:
    """The photos' outdoor probabilities: from ``override`` (photo_id -> probability, e.g. from a
    scene model) where given, else the table's ``outdoor_prob`` column."""
    if override is None:
        return pred.outdoor_prob.astype(np.float64), "outdoor_prob column"
    series = override if isinstance(override, pd.Series) else pd.Series(dict(override), dtype=np.float64)
    values = series.reindex(pred.photo_id).to_numpy(dtype=np.float64)
    return np.where(np.isnan(values), -1.0, values), "scene model"


def evaluate_predictions(
    predictions: dict[str, ModelPredictions],
    mesh: Mesh,
    config: EvalConfig = EvalConfig(),
    outdoor_probs: Mapping[str, float] | None = None,
    admin_truth: pd.DataFrame | None = None,
    training: TrainingPhotos | None = None,
    test_numeric_flickr: bool | None = None,
) -> Evaluation:
    """Score every model and the non-model rows; see the module docstring for what is covered.

    ``admin_truth``: photo_id, country, region, sub_region, city of the test photos (a data set's
    admin columns, "" where unknown), the truth of the admin-level accuracy for the photos that
    have a value there; the others, and all without it, take the reverse-geocoded true point.
    ``training``: the photos the models were trained on (``leakage.read_training_photos``; an
    external set's user ids hashed with ``leakage.training_user_hasher``): adds ``leakage``, and
    ``near_duplicates`` where it gives their locations.
    ``test_numeric_flickr``: None when the test photos are a split of the training data set; for
    an external set, whether its bare numeric ids are Flickr photo ids (``leakage.leakage_counts``)."""
    if not predictions:
        raise EvaluationError("evaluate_predictions: no models; expected at least one prediction table")
    if config.label_point not in metrics.LABEL_POINTS:
        raise EvaluationError(
            f"EvalConfig.label_point={config.label_point!r}; expected one of {metrics.LABEL_POINTS}"
        )
    if config.admin_accuracy:
        admin.check_rule(config.admin_rule)
    if config.threshold_rule not in THRESHOLD_RULES:
        raise EvaluationError(
            f"EvalConfig.threshold_rule={config.threshold_rule!r}; expected one of {THRESHOLD_RULES}"
        )
    thresholds = tuple(float(t) for t in config.thresholds_km)
    radius = float(config.earth_radius_km)
    points = {lp: metrics.label_points(mesh, lp) for lp in metrics.LABEL_POINTS}
    models: dict[str, Any] = {}
    errors: dict[str, NDArray[np.float64]] = {}
    true_cells: dict[str, NDArray[np.int64]] = {}
    located: list[tuple[ModelPredictions, NDArray[np.int64]]] = []
    outdoors: dict[str, NDArray[np.bool_] | None] = {}
    by_points: dict[str, dict[str, NDArray[np.float64]]] = {}
    with Progress(len(predictions), "models", "evaluate") as progress:
        for name, pred in predictions.items():
            true_cell = next(
                (c for p, c in located if len(p) == len(pred) and np.array_equal(p.photo_id, pred.photo_id)),
                None,
            )
            if true_cell is None:
                true_cell = mesh.locate(pred.lat, pred.lon) if len(pred) else np.zeros(0, np.int64)
                located.append((pred, true_cell))
            true_cells[name] = true_cell
            by_point = _errors_by_label_point(pred, points, name, radius)
            errors[name] = by_point[config.label_point]
            prob, prob_source = _outdoor_probs(pred, outdoor_probs)
            known = known_mask(prob)
            outdoor = outdoor_mask(prob, config.outdoor_threshold)
            models[name] = {
                "display_name": display_name(name),
                "source": pred.source,
                "num_photos": len(pred),
                "prediction": "point" if pred.is_point else "cell",
                "num_in_dropped_cells": int((true_cell < 0).sum()),
                "num_without_prediction": int(
                    np.isnan(pred.pred_lat).sum() if pred.pred_lat is not None else (pred.cell < 0).sum()
                ),
                # Photos whose point is a fallback (retrieval inside the top cells that found no
                # photo there: the top cell's label point); None for a table without the flag.
                "num_fallback": None if pred.fallback is None else int(pred.fallback.sum()),
                "by_label_point": {lp: summarize(d, pred.user_hash, config) for lp, d in by_point.items()},
                "outdoor": {
                    "probability_source": prob_source,
                    "threshold": float(config.outdoor_threshold),
                    "num_known": int(known.sum()),
                    "num_outdoor": int(outdoor.sum()),
                    "by_label_point": (
                        {
                            lp: summarize(d[outdoor], pred.user_hash[outdoor], config)
                            for lp, d in by_point.items()
                        }
                        if known.any()
                        else None
                    ),
                },
                "class_bias": (
                    None if pred.is_point else metrics.class_bias(true_cell, pred.cell, mesh.num_cells)
                ),
            }
            outdoors[name] = outdoor if known.any() else None
            by_points[name] = by_point
            progress.update(1)

    reference_name = next(iter(predictions))
    ref = predictions[reference_name]
    ref_true = true_cells[reference_name]
    results: dict[str, Any] = {
        "results_version": RESULTS_VERSION,
        "split": config.split,
        "mesh_name": config.mesh_name,
        "num_cells": mesh.num_cells,
        "thresholds_km": list(thresholds),
        "convention": config.convention(),
        "bootstrap": {
            "samples": int(config.bootstrap_samples),
            "seed": int(config.bootstrap_seed),
            "level": LEVEL,
            "method": METHOD,
        },
        "label_point": config.label_point,
        "outdoor_threshold": float(config.outdoor_threshold),
        "reference_model": reference_name,
        "models": models,
        "best_possible": _best_possible(mesh, ref, ref_true, config),
        "most_frequent_cell": _most_frequent(mesh, ref, ref_true, points, config),
        "wilcoxon": _wilcoxon(predictions, errors, config.wilcoxon_pairs),
        "differences": _differences(predictions, errors, by_points, outdoors, mesh, points, config),
        "admin_accuracy": (
            _admin_accuracy(
                predictions,
                points[config.label_point],
                config.label_point,
                admin_truth,
                config.admin_rule,
                config.bootstrap(),
            )
            if config.admin_accuracy
            else None
        ),
        "leakage": (
            _leakage(predictions, errors, models, training, config, test_numeric_flickr)
            if training is not None
            else None
        ),
        "near_duplicates": (
            _near_duplicates(predictions, errors, models, training, config)
            if training is not None and training.has_locations and config.near_duplicate_km > 0
            else None
        ),
    }
    return Evaluation(results, dict(predictions), errors, true_cells)


def _errors_by_label_point(
    pred: ModelPredictions, points: dict[str, NDArray[np.float64]], name: str, radius_km: float
) -> dict[str, NDArray[np.float64]]:
    """Per-photo errors at each label point; a point prediction's are the same at both."""
    if pred.pred_lat is not None and pred.pred_lon is not None:  # a point table has both
        d = metrics.point_errors_km(pred.pred_lat, pred.pred_lon, pred.lat, pred.lon, radius_km)
        return {lp: d for lp in metrics.LABEL_POINTS}
    try:
        return {
            lp: metrics.prediction_errors_km(pred.cell, pred.lat, pred.lon, points[lp], radius_km)
            for lp in metrics.LABEL_POINTS
        }
    except EvaluationError as e:
        raise EvaluationError(f"{pred.source or name}: {e}") from None


def _best_possible(
    mesh: Mesh, ref: ModelPredictions, true_cell: NDArray[np.int64], config: EvalConfig
) -> dict[str, Any]:
    """Table 6/7 "Best Possible": ``mesh.best_possible`` rows; its class bias is KL 0 by
    construction (q = p) and its entropy is that of the true classes."""
    if len(ref) == 0:
        return {"num_photos": 0, "rows": []}
    table = best_possible(
        mesh,
        ref.lat,
        ref.lon,
        tuple(float(t) for t in config.thresholds_km),
        float(config.earth_radius_km),
        config.threshold_rule,
    )
    table["class_bias"] = metrics.class_bias(true_cell, true_cell, mesh.num_cells)
    return table


def _most_frequent(
    mesh: Mesh,
    ref: ModelPredictions,
    true_cell: NDArray[np.int64],
    points: dict[str, NDArray[np.float64]],
    config: EvalConfig,
) -> dict[str, Any]:
    cell = metrics.most_frequent_cell(mesh)
    pred = np.full(len(ref), cell, np.int64)
    return {
        "cell": cell,
        "cell_training_photos": int(mesh.counts[cell]),
        "num_photos": len(ref),
        "by_label_point": {
            lp: summarize(_most_frequent_errors(mesh, ref, p, config), ref.user_hash, config)
            for lp, p in points.items()
        },
        "class_bias": metrics.class_bias(true_cell, pred, mesh.num_cells),
    }


def _most_frequent_errors(
    mesh: Mesh, ref: ModelPredictions, points: NDArray[np.float64], config: EvalConfig
) -> NDArray[np.float64]:
    """Per-photo errors of the baseline that predicts the commonest training cell for every photo."""
    pred = np.full(len(ref), metrics.most_frequent_cell(mesh), np.int64)
    return metrics.prediction_errors_km(pred, ref.lat, ref.lon, points, config.earth_radius_km)


def summarize(errors_km: NDArray[np.float64], user_hash: NDArray[Any], config: EvalConfig) -> dict[str, Any]:
    """The error summary of one row of the report with its 95 % intervals: what every row uses.
    A caller passes the row's per-photo errors and the same photos' user hashes; thresholds, rule
    and bootstrap come from ``config`` (``metrics.error_summary``, ``uncertainty``)."""
    return metrics.error_summary(
        errors_km,
        tuple(float(t) for t in config.thresholds_km),
        config.threshold_rule,
        users=user_hash,
        bootstrap=config.bootstrap(),
    )


def paired_difference(
    errors_a_km: NDArray[np.float64],
    errors_b_km: NDArray[np.float64],
    user_hash: NDArray[Any],
    config: EvalConfig,
    mask_a: NDArray[np.bool_] | None = None,
    mask_b: NDArray[np.bool_] | None = None,
) -> dict[str, Any]:
    """B - A of every number of two rows on the same photos (``user_hash`` per photo), with its
    paired 95 % interval (both rows on the same resampled photographers); ``mask_a`` / ``mask_b``
    restrict a row to part of the photos (e.g. outdoor only)."""
    thresholds = tuple(float(t) for t in config.thresholds_km)
    rows = [
        metrics.error_summary(e if m is None else e[m], thresholds, config.threshold_rule)
        for e, m in ((errors_a_km, mask_a), (errors_b_km, mask_b))
    ]
    interval = difference_interval(
        errors_a_km,
        errors_b_km,
        user_hash,
        thresholds,
        config.threshold_rule,
        config.bootstrap(),
        mask_a,
        mask_b,
    )
    return {"num_photos": int(len(errors_a_km)), **metrics.difference_summary(rows[0], rows[1], interval)}


def _side(model: str, display: str, label_point: str, photos: str = "all") -> dict[str, str]:
    return {"model": model, "display_name": display, "label_point": label_point, "photos": photos}


def _differences(
    predictions: dict[str, ModelPredictions],
    errors: dict[str, NDArray[np.float64]],
    by_points: dict[str, dict[str, NDArray[np.float64]]],
    outdoors: dict[str, NDArray[np.bool_] | None],
    mesh: Mesh,
    points: dict[str, NDArray[np.float64]],
    config: EvalConfig,
) -> list[dict[str, Any]]:
    """The paired differences the findings read, each B - A with its interval:

    - "models": every Wilcoxon pair (B against A on the photos both tables hold), then the reference
      model against the most-frequent-cell baseline on the reference photos;
    - "label_point": each cell model, imagery centroid - cell centroid (§4.1.1, Table 3);
    - "outdoor": each model with outdoor probabilities, outdoor-only photos - all photos (§4.1.2,
      Table 4); the outdoor photos are part of the same resampled photographers.
    """
    lp = config.label_point
    out = []
    for a, b in config.wilcoxon_pairs:
        if a not in predictions or b not in predictions:
            continue
        rows_a, rows_b = paired_rows(predictions[a], predictions[b])
        diff = paired_difference(
            errors[a][rows_a], errors[b][rows_b], predictions[a].user_hash[rows_a], config
        )
        sides = {"a": _side(a, display_name(a), lp), "b": _side(b, display_name(b), lp)}
        out.append({"kind": "models", **sides, **diff})
    reference = next(iter(predictions))
    ref = predictions[reference]
    if len(ref):
        baseline = _most_frequent_errors(mesh, ref, points[lp], config)
        diff = paired_difference(baseline, errors[reference], ref.user_hash, config)
        sides = {
            "a": _side("most_frequent_cell", "Most Frequent Cell", lp),
            "b": _side(reference, display_name(reference), lp),
        }
        out.append({"kind": "models", **sides, **diff})
    for name, pred in predictions.items():
        if pred.is_point:
            continue
        diff = paired_difference(by_points[name]["cell"], by_points[name]["imagery"], pred.user_hash, config)
        sides = {
            "a": _side(name, display_name(name), "cell"),
            "b": _side(name, display_name(name), "imagery"),
        }
        out.append({"kind": "label_point", **sides, **diff})
    for name, pred in predictions.items():
        outdoor = outdoors[name]
        if outdoor is None:
            continue
        diff = paired_difference(errors[name], errors[name], pred.user_hash, config, mask_b=outdoor)
        sides = {
            "a": _side(name, display_name(name), lp, "all"),
            "b": _side(name, display_name(name), lp, "outdoor"),
        }
        out.append({"kind": "outdoor", **sides, **diff})
    return out


def _wilcoxon(
    predictions: dict[str, ModelPredictions],
    errors: dict[str, NDArray[np.float64]],
    pairs: tuple[tuple[str, str], ...],
) -> list[dict[str, Any]]:
    out = []
    for a, b in pairs:
        if a not in predictions or b not in predictions:
            continue
        rows_a, rows_b = paired_rows(predictions[a], predictions[b])
        test = metrics.wilcoxon_paired(errors[a][rows_a], errors[b][rows_b], display_name(a), display_name(b))
        test["display_a"], test["display_b"] = test["model_a"], test["model_b"]
        test["model_a"], test["model_b"] = a, b
        out.append(test)
    return out


def _admin_accuracy(
    predictions: dict[str, ModelPredictions],
    points: NDArray[np.float64],
    label_point: str,
    admin_truth: pd.DataFrame | None,
    rule: str,
    bootstrap: Bootstrap,
) -> dict[str, Any]:
    """Country / region / sub-region / city accuracy of every model under ``rule`` (``admin``), each
    level with its 95 % interval (``interval``, [lo, hi]; resampled like every other row, over the
    model's photographers). A cell model's predicted point is its cell's label point (the cells'
    names are looked up once); the truth is made once per set of photos."""
    cell_names = admin.reverse_geocode(points[:, 0], points[:, 1]) if len(points) else None
    truths: list[tuple[ModelPredictions, NDArray[np.object_], dict[str, Any]]] = []
    by_model: dict[str, dict[str, Any]] = {}
    for name, pred in predictions.items():
        found = next(
            (
                (t, info)
                for p, t, info in truths
                if len(p) == len(pred) and np.array_equal(p.photo_id, pred.photo_id)
            ),
            None,
        )
        if found is None:
            found = admin.truth_names(admin_truth, pred.photo_id, pred.lat, pred.lon, rule)
            truths.append((pred, *found))
        truth, info = found
        if pred.pred_lat is not None and pred.pred_lon is not None:
            predicted = admin.reverse_geocode(pred.pred_lat, pred.pred_lon)
        else:
            predicted = np.full((len(pred), len(admin.ADMIN_LEVELS)), "", dtype=object)
            has = pred.cell >= 0
            if cell_names is not None:
                predicted[has] = cell_names[pred.cell[has]]
        right, counted, known = admin.admin_hits(predicted, truth, rule)
        accuracy = admin.level_accuracy(right, counted, known)
        interval = uncertainty.rate_intervals(right, counted, pred.user_hash, bootstrap)
        for i, level in enumerate(admin.ADMIN_LEVELS):
            accuracy[level]["interval"] = None if interval is None else interval["percent"][i]
        # How the levels' intervals were made (the ends are under each level).
        made = None if interval is None else {k: v for k, v in interval.items() if k != "percent"}
        by_model[name] = {**accuracy, "truth": info, "interval": made}
    first = next(iter(by_model.values()))["truth"] if by_model else {}
    return {
        "geocoder": admin.GEOCODER,
        "label_point": label_point,
        "rule": rule,
        "rule_text": admin.RULES[rule],
        "truth_source": first.get("truth_source", admin.TRUTH_GEOCODED),
        "truth_text": first.get("text", ""),
        "truth_counts": {
            "dataset": first.get("num_dataset", 0),
            "geocoded": first.get("num_geocoded", 0),
        },
        "levels": list(admin.ADMIN_LEVELS),
        "models": by_model,
    }


def _leakage(
    predictions: dict[str, ModelPredictions],
    errors: dict[str, NDArray[np.float64]],
    models: dict[str, Any],
    training: TrainingPhotos,
    config: EvalConfig,
    test_numeric_flickr: bool | None = None,
) -> dict[str, Any]:
    """Photo ids and photographers shared with training (reference model's photos), and for every
    model its errors on all photos (its row in ``models``) and on the photos of photographers
    absent from training."""
    ref = next(iter(predictions.values()))
    counts = leakage_counts(ref.photo_id, ref.user_hash, training, test_numeric_flickr)
    by_model = {}
    if counts["has_users"]:
        for name, pred in predictions.items():
            unseen = unseen_photographers(pred.user_hash, training)
            by_model[name] = {
                "all": models[name]["by_label_point"][config.label_point],
                "unseen_photographers": summarize(errors[name][unseen], pred.user_hash[unseen], config),
            }
    return {**counts, "label_point": config.label_point, "models": by_model}


def _near_duplicates(
    predictions: dict[str, ModelPredictions],
    errors: dict[str, NDArray[np.float64]],
    models: dict[str, Any],
    training: TrainingPhotos,
    config: EvalConfig,
) -> dict[str, Any]:
    """Test photos with a training photo within ``config.near_duplicate_km`` (reference model's
    photos; at the evaluation's Earth radius), and for every model its errors on all photos (its
    row in ``models``) and on the photos with no training photo that near (looked up once per set
    of photos)."""
    distance_km, radius_km = float(config.near_duplicate_km), float(config.earth_radius_km)
    ref = next(iter(predictions.values()))
    near = near_training(ref.lat, ref.lon, training, distance_km, radius_km)
    counts = near_duplicate_counts(near, len(ref), training, distance_km)
    looked_up: list[tuple[ModelPredictions, NDArray[np.bool_]]] = [(ref, ~any_split(near, len(ref)))]
    by_model = {}
    for name, pred in predictions.items():
        clear = next(
            (c for p, c in looked_up if len(p) == len(pred) and np.array_equal(p.photo_id, pred.photo_id)),
            None,
        )
        if clear is None:
            clear = no_near_duplicate(pred.lat, pred.lon, training, distance_km, radius_km)
            looked_up.append((pred, clear))
        by_model[name] = {
            "all": models[name]["by_label_point"][config.label_point],
            "no_near_duplicate": summarize(errors[name][clear], pred.user_hash[clear], config),
        }
    return {**counts, "label_point": config.label_point, "models": by_model}
