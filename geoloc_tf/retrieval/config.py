"""Settings of `geoloc index` (``feature_index.build_index``) and `geoloc search` (``query``), each
declared once (``mesh.settings``); the commands' options are derived from them
(``experiments.commands``). Imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import dataclasses

from data_pipelines.config import FILES_MAX_PIXELS, max_pixels_setting
from data_pipelines.splits import M1_TRAIN, SPLITS
from mesh.settings import check_settings, setting

SEARCH_FORMATS = ("table", "json")


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """Which photos of a run `geoloc index` stores M1's features of, and how fast."""

    split: str = setting(
        M1_TRAIN,
        "Split of the run's data set to index (default: M1's training "
        "photos, whose locations the neighbours report).",
        choices=SPLITS,
    )
    batch_size: int = setting(128, "Photos per M1 forward pass.", minimum=1, affects_outputs=False)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """What `geoloc search` returns for a query image (appendix B, Figure 4)."""

    k: int = setting(6, "Neighbours to return (Figure 4: 6).", minimum=1)
    format: str = setting("table", "Output: an aligned table, or JSON.", choices=SEARCH_FORMATS)
    max_pixels: int = max_pixels_setting(FILES_MAX_PIXELS)

    def __post_init__(self) -> None:
        check_settings(self)
