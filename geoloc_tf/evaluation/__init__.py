"""Evaluation of stored predictions: the paper's metrics, outdoor-only rows, the report, comparisons.

(§3.1.3, §4, Tables 3-7, appendix C, Figures 1-2.) One small module per job:

- ``metrics``: per-photo errors at either label point, accuracy at 1/25/200/750/2500 km, mean and
  median, KL divergence and entropy with the +1 rule, paired Wilcoxon test.
- ``outdoor``: Table 4's outdoor filter, from a column or a scene classifier + Places365 IO file.
- ``model_predictions``: a model's stored prediction table as the evaluation's arrays
  (``ModelPredictions``).
- ``results``: every number of the report for a set of models and a mesh.
- ``tables`` / ``plots`` / ``report``: Tables 3, 4, 6, 7 + Wilcoxon as Markdown/CSV/JSON, PNG figures.
- ``compare``: several runs side by side.
- Beyond the paper, for numbers comparable with today's benchmarks: the Earth radius and threshold
  rule as settings and GeoScore (``mesh.geodesy``), ``admin`` (country / region / sub-region / city
  accuracy by offline reverse geocoding, as OSV-5M) and ``leakage`` (test photographers and photo
  ids found in the training data; rows on the photographers absent from it, and on the photos with
  no training photo within ``near_duplicate_km``, geometry in ``mesh.proximity``).
"""

from geoloc_tf.evaluation.compare import compare_results, compare_runs, read_results
from geoloc_tf.evaluation.metrics import (
    class_bias,
    entropy_nats,
    error_summary,
    kl_divergence,
    label_points,
    most_frequent_cell,
    prediction_errors_km,
    wilcoxon_paired,
)
from geoloc_tf.evaluation.model_predictions import (
    discover_prediction_tables,
    load_predictions,
    read_prediction_table,
    read_prediction_tables,
)
from geoloc_tf.evaluation.outdoor import outdoor_mask, read_io_labels, scene_outdoor_probs
from geoloc_tf.evaluation.report import SIMULATED_NOTICE, ReportConfig, evaluate_run, write_report
from geoloc_tf.evaluation.results import EvalConfig, Evaluation, evaluate_predictions

__all__ = [
    "EvalConfig",
    "Evaluation",
    "ReportConfig",
    "SIMULATED_NOTICE",
    "class_bias",
    "compare_results",
    "compare_runs",
    "discover_prediction_tables",
    "entropy_nats",
    "error_summary",
    "evaluate_predictions",
    "evaluate_run",
    "kl_divergence",
    "label_points",
    "load_predictions",
    "most_frequent_cell",
    "outdoor_mask",
    "prediction_errors_km",
    "read_io_labels",
    "read_prediction_table",
    "read_prediction_tables",
    "read_results",
    "scene_outdoor_probs",
    "wilcoxon_paired",
    "write_report",
]
