"""The run's configuration: one section per stage's settings, each declared once.

A section is the config dataclass of the library code that uses its settings (`mesh.config.MeshConfig`,
...): its fields, declared with `mesh.settings.setting`, carry their default, help text, bounds and
choices. `experiments.flags` derives the runner's `--<section>_<field>` flags from them, `config.json`
and the stages' fingerprints are their values, and the `geoloc` subcommands derive their options from
the same classes (`experiments.commands`). Nothing maps a flag onto a field by hand.

Every rule runs when the flags are parsed, before any stage starts: a section checks its own fields
and their combinations in `__post_init__`, and `RunConfig.__post_init__` checks the rules that span
sections (`--evaluate_knn_k` needs `--predict_store_features`, ...). This module and every section
class import without TensorFlow, so parsing flags stays fast.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from data_pipelines.config import IngestConfig
from geoloc_tf.m1.config import M1Config
from geoloc_tf.m2.config import M2Config
from geoloc_tf.m3.config import M3Config
from geoloc_tf.run_configs import EvaluateConfig, ExportConfig, PredictConfig
from geoloc_tf.runtime_config import RuntimeConfig
from mesh.config import MeshConfig
from mesh.settings import SettingError, flat_values, from_flat

FORMAT_VERSION = 2


def _non_empty(values: tuple) -> str | None:
    return None if len(values) else "at least one value is needed"


SECTIONS: dict[str, type] = {
    "mesh": MeshConfig,
    "data": IngestConfig,
    "m1": M1Config,
    "predict": PredictConfig,
    "m2": M2Config,
    "m3": M3Config,
    "evaluate": EvaluateConfig,
    "export": ExportConfig,
    "runtime": RuntimeConfig,
}


@dataclass(frozen=True)
class RunConfig:
    """Every section of one run; written to `run_dir/config.json`."""

    mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
    data: IngestConfig = dataclasses.field(default_factory=IngestConfig)
    m1: M1Config = dataclasses.field(default_factory=M1Config)
    predict: PredictConfig = dataclasses.field(default_factory=PredictConfig)
    m2: M2Config = dataclasses.field(default_factory=M2Config)
    m3: M3Config = dataclasses.field(default_factory=M3Config)
    evaluate: EvaluateConfig = dataclasses.field(default_factory=EvaluateConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        """Rules that span sections; their fields are named `<section>_<field>`, as the flags."""
        if self.evaluate.knn_k and not self.predict.store_features:
            raise SettingError(
                "RunConfig",
                "{evaluate_knn_k}=%d needs M1's features of every photo: add "
                "{predict_store_features} (or set {evaluate_knn_k}=0)" % self.evaluate.knn_k,
                ("evaluate_knn_k", "predict_store_features"),
            )
        cells = self.evaluate.cell_retrieval.cell_retrieval_cells
        if cells and not self.predict.store_features:
            raise SettingError(
                "RunConfig",
                "{evaluate_cell_retrieval_cells}=%d needs M1's features of every photo: add "
                "{predict_store_features} (or set {evaluate_cell_retrieval_cells}=0)" % cells,
                ("evaluate_cell_retrieval_cells", "predict_store_features"),
            )
        if cells > self.predict.top_k:
            raise SettingError(
                "RunConfig",
                "{evaluate_cell_retrieval_cells}=%d exceeds {predict_top_k}=%d: retrieval searches "
                "the top cells of the ones M1's predictions store" % (cells, self.predict.top_k),
                ("evaluate_cell_retrieval_cells", "predict_top_k"),
            )
        if self.m2.top_k > self.predict.top_k:
            raise SettingError(
                "RunConfig",
                "{m2_top_k}=%d exceeds {predict_top_k}=%d: M2 keeps the top cells of "
                "the ones M1's predictions store" % (self.m2.top_k, self.predict.top_k),
                ("m2_top_k", "predict_top_k"),
            )

    @property
    def seed(self) -> int:
        """The run's one seed (--data_seed): splits, demo, mesh sample, M1's curriculum, M2, M3."""
        return self.data.splits.seed

    def section(self, name: str) -> Any:
        return getattr(self, name)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """{section: {setting: value}}, settings by their flag names (`--<section>_<setting>`)."""
        return {name: flat_values(self.section(name)) for name in SECTIONS}

    def to_json(self) -> str:
        return json.dumps(
            {"format_version": FORMAT_VERSION, "sections": self.to_dict()}, indent=2, sort_keys=True
        )

    @classmethod
    def from_dict(cls, sections: dict[str, dict[str, Any]]) -> "RunConfig":
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown config sections {sorted(unknown)}; known: {sorted(SECTIONS)}")
        return cls(**{name: from_flat(SECTIONS[name], values) for name, values in sections.items()})

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        payload = json.loads(text)
        version = payload.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"config.json has format_version {version!r}; this geoloc reads {FORMAT_VERSION}"
            )
        return cls.from_dict(payload["sections"])
