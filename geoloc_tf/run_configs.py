"""Settings of the run's steps that have no model of their own: M1's predictions, the evaluation
and the export, and of `geoloc evaluate`, which reuses the first two. Each declared once
(``mesh.settings``); field names are the runner's flag suffixes (``top_k`` of ``PredictConfig`` is
``--predict_top_k``). Imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import dataclasses

from data_pipelines.config import FILES_MAX_PIXELS, DecodeBudget, decode_budget, max_pixels_setting
from geoloc_tf.m2.config import DEFAULT_TOP_K
from geoloc_tf.retrieval.config import CellRetrievalConfig, engine_setting
from mesh.geodesy import ACCURACY_THRESHOLDS_KM, EARTH_RADIUS_KM, THRESHOLD_RULES
from mesh.settings import check_settings, nested, setting

#: How admin-level accuracy may be counted (``geoloc_tf.evaluation.admin.RULES`` says each in words).
ADMIN_RULES: tuple[str, ...] = ("geoloc", "osv5m")


def _increasing(values: tuple[float, ...]) -> str | None:
    if list(values) != sorted(values) or len(set(values)) != len(values):
        return "values must be strictly increasing"
    return None


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """Stored M1 predictions for every photo, read by M2, M3, averaging, evaluation and retrieval
    (``geoloc_tf.m1.prediction_tables``)."""

    top_k: int = setting(
        DEFAULT_TOP_K,
        "Cells kept per photo, with their probabilities (Figure 3 operator (1): 10).",
        minimum=1,
    )
    store_features: bool = setting(
        False, "Also store M1's 1536-d penultimate features (for the kNN row and retrieval)."
    )

    def __post_init__(self) -> None:
        check_settings(self)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Evaluation and report (paper §3.1.3, Tables 3-7, appendix C)."""

    thresholds_km: tuple[float, ...] = setting(
        ACCURACY_THRESHOLDS_KM,
        "Accuracy thresholds in km: street, city, region, country, continent (§3.1.3).",
        minimum=0.0,
        min_exclusive=True,
        check=_increasing,
    )
    outdoor_threshold: float = setting(
        0.5, "Photos with outdoor probability >= this count as outdoor (Table 4).", minimum=0.0, maximum=1.0
    )
    earth_radius_km: float = setting(
        EARTH_RADIUS_KM,
        "Earth radius of the haversine distance, km: the paper's 6372.795 (§3.1.3); GeoEstimation, "
        "OSV-5M and PLONK use 6371, PIGEON 6378.137. Stated in the report.",
        minimum=0.0,
        min_exclusive=True,
    )
    threshold_rule: str = setting(
        "le",
        "le: an error equal to a threshold counts as within it (the paper, §3.1.3; GeoEstimation, "
        "GeoCLIP); lt: only errors strictly below it (OSV-5M, PLONK, PIGEON). Stated in the report.",
        choices=THRESHOLD_RULES,
    )
    admin_rule: str = setting(
        "geoloc",
        "How country / region / sub-region / city accuracy counts (geoloc_tf.evaluation.admin): "
        "geoloc: a photo whose truth is unknown at a level is left out of that level, names compared "
        "without accents or case; osv5m: as OSV-5M's released code (every photo counts at every "
        "level, unknown truth never matches, the exact joined names compared). Stated in the report.",
        choices=ADMIN_RULES,
    )
    bootstrap_samples: int = setting(
        1000,
        "Resamples of the bootstrap that gives every accuracy, mean/median error and GeoScore its "
        "95 % interval, and each paired difference of two models its interval; photographers are "
        "resampled where the photos name them (photos of one user are not independent), else "
        "photos. 0: no intervals.",
        minimum=0,
    )
    bootstrap_seed: int = setting(
        0, "Seed of the bootstrap's resampling (the same seed, the same intervals)."
    )
    near_duplicate_km: float = setting(
        1.0,
        "Beyond the paper: every model is also scored on the test photos with no training photo "
        "within this great-circle distance (km), beside all photos: near-duplicates (bursts, the same "
        "landmark from the same spot) inflate retrieval and classification alike. 0: off.",
        minimum=0.0,
    )
    knn_k: int = setting(
        0,
        "Beyond the paper: add an 'M1 kNN' row, each photo located from its k nearest M1 "
        "training photos in M1's feature space (Vo et al. 2017); needs --predict_store_features. "
        "0: off (at YFCC100M scale the features take ~6 GB per million photos).",
        minimum=0,
    )
    knn_bandwidth_km: float = setting(
        100.0,
        "Bandwidth of the Gaussian kernel over great-circle distance that picks the densest "
        "of the k neighbours' locations (our choice; Vo et al. 2017 tune it).",
        minimum=0.0,
        min_exclusive=True,
    )
    knn_engine: str = engine_setting()  # also the neighbour search of retrieval inside the top cells
    cell_retrieval: CellRetrievalConfig = nested(
        CellRetrievalConfig,
        "Beyond the paper: the 'M1 Cell Retrieval' row, retrieval inside M1's top cells "
        "(geoloc_tf.retrieval.cell_retrieval); needs --predict_store_features.",
    )

    def __post_init__(self) -> None:
        check_settings(self)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """SavedModel export of the trained models."""

    top_k: int = setting(5, "Cells returned per photo by the serving signatures.", minimum=1)

    def __post_init__(self) -> None:
        check_settings(self)


def _pixel_range(values: tuple[float, ...]) -> str | None:
    if len(values) != 2 or values[0] >= values[1]:
        return "expected two values, low,high with low < high"
    return None


@dataclasses.dataclass(frozen=True)
class ExternalEvaluateConfig:
    """`geoloc evaluate`: a trained run on an external test set (§4.1.3, Table 5).

    The thresholds, outdoor threshold and cells kept per photo are the run's own settings (the
    nested sections), so the tool takes them under the runner's names without the prefix."""

    evaluate: EvaluateConfig = nested(EvaluateConfig, "The evaluation, as in the run's report.")
    predict: PredictConfig = nested(PredictConfig, "M1's stored predictions, as in the run.")
    batch_size: int = setting(32, "Photos per forward pass.", minimum=1, affects_outputs=False)
    max_pixels: int = max_pixels_setting(FILES_MAX_PIXELS)
    decode: DecodeBudget = decode_budget()
    scene_image_size: int = setting(
        224, "Side of the square images the scene classifier takes, px.", minimum=1
    )
    scene_input_range: tuple[float, ...] = setting(
        (0.0, 1.0), "Pixel range the scene classifier expects, e.g. 0,1 or -1,1 or 0,255.", check=_pixel_range
    )

    def __post_init__(self) -> None:
        check_settings(self)
