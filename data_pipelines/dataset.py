"""Reading a written data set back: manifest, per-split tables, shard paths, salt.

Split names: ``m1_train``, ``m23_train``, ``m23_val`` (``splits.SPLITS``); ``m1_val`` is accepted
as the union ``m23_train+m23_val`` (appendix A: M1 validation = M2/M3 train + validation), and
``a+b`` joins splits in that order.

Every file is checked against the manifest before it is read (``mesh.integrity.check_written``): a
file truncated or replaced since ingestion wrote it is one error line naming it, exit 2, never a
traceback from Arrow or tf.data nor a training run on another split's photos. How much is checked
follows what each file costs to hash and what else guards it:

- a split table (``table_file``): size and SHA-256, once per file and ``WrittenDataset``. Tables
  hold no pixels (about 100 bytes a photo) and are read at every start anyway, so hashing one costs
  about what reading it does; a table swapped for another split's reads without complaint otherwise.
- a shard (``num_bytes``, ``sha256``): the size only, at every start. Shards hold the pixels (tens
  of KB a photo, hundreds of times the table): their SHA-256 would add about 1 s per GB to every
  training start, and each record carries its own CRC-32C that tf.data checks as it reads. A
  truncated shard, or one swapped for another (shards of other photos almost always differ in
  size), is refused here; the SHA-256 is checked when `geoloc ingest` is rerun with the same
  arguments (``ingest.shards``), the full verification of a data set.

Manifests written before tables were recorded are read with one warning per table.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pandas as pd

from data_pipelines import errors, splits
from data_pipelines.ingest import layout
from mesh.integrity import check_written

#: What to do about a damaged file of a data set.
REMEDY = "rerun `geoloc ingest` (or the data stage with --force_stages=data) to write it again"


@dataclasses.dataclass(frozen=True)
class WrittenDataset:
    root: str
    manifest: dict
    metadata: dict
    #: The tables already checked against the manifest (each is hashed once).
    _checked: set[str] = dataclasses.field(default_factory=set, compare=False, repr=False)

    @property
    def user_hash_salt(self) -> str:
        return self.metadata["user_hash_salt"]

    @property
    def max_side(self) -> int:
        """Longest image side the ingestion kept (its ``max_image_side``; ``max_side`` in data sets
        written before the setting had the runner's name)."""
        settings = self.metadata["settings"]
        return int(settings.get("max_image_side", settings.get("max_side")))

    def split_names(self, split: str) -> list[str]:
        names = list(splits.M1_VAL_SPLITS) if split == "m1_val" else split.split("+")
        for name in names:
            if name not in self.manifest["splits"]:
                raise errors.DatasetError(
                    f"{self.root}/manifest.json: no split {name!r}; expected one of "
                    f"{sorted(self.manifest['splits'])} or m1_val"
                )
        return names

    def shard_paths(self, split: str) -> list[str]:
        """Shard files of ``split`` in manifest order (the order of the table's ``shard`` column)."""
        records = os.path.join(self.root, self.manifest["records_dir"])
        shards = [s for name in self.split_names(split) for s in self.manifest["splits"][name]["shards"]]
        paths = [os.path.join(records, s["file"]) for s in shards]
        for path, shard in zip(paths, shards):
            # The size, not the SHA-256 beside it: see the module docstring.
            entry = {"bytes": shard["num_bytes"]} if "num_bytes" in shard else None
            check_written(path, entry, REMEDY, size_only=True)
        return paths

    def table_path(self, name: str) -> str:
        """The table of split ``name`` (one split, not a join), checked against the manifest's
        size and SHA-256 (once per ``WrittenDataset``)."""
        split = self.manifest["splits"][name]
        path = os.path.join(self.root, split["table"])
        if path not in self._checked:
            check_written(path, split.get("table_file"), REMEDY)
            self._checked.add(path)
        return path

    def shard_lengths(self, split: str) -> list[int]:
        return [
            s["num_examples"]
            for name in self.split_names(split)
            for s in self.manifest["splits"][name]["shards"]
        ]

    def table(self, split: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Per-photo metadata of ``split`` in record order (shard, then index in shard).

        For joined splits, ``shard`` is renumbered to index ``shard_paths(split)``.
        """
        frames, offset = [], 0
        for name in self.split_names(split):
            path = self.table_path(name)
            try:
                df = pd.read_parquet(path, columns=columns)
            except (OSError, ValueError, EOFError) as error:
                raise errors.DatasetError(
                    f"{path}: not a readable table ({str(error).splitlines()[0] if str(error) else error!r}); "
                    "rerun `geoloc ingest` (or the data stage with --force_stages=data)"
                ) from None
            if "shard" in df.columns:
                df["shard"] = df["shard"] + offset
            offset += len(self.manifest["splits"][name]["shards"])
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def num_examples(self, split: str) -> int:
        return sum(self.shard_lengths(split))


def load(root: str) -> WrittenDataset:
    """Opens a data set written by ``ingest.run_ingestion`` (complete: summary.json exists)."""
    for name in (layout.SUMMARY_FILE, layout.MANIFEST_FILE, layout.METADATA_FILE):
        if not os.path.exists(os.path.join(root, name)):
            raise errors.DatasetError(
                f"{root}: no {name}; expected a finished ingestion (rerun "
                "`geoloc ingest` with the same arguments to finish it)"
            )
    with open(os.path.join(root, layout.MANIFEST_FILE)) as f:
        manifest = json.load(f)
    with open(os.path.join(root, layout.METADATA_FILE)) as f:
        metadata = json.load(f)
    return WrittenDataset(root=root, manifest=manifest, metadata=metadata)
