"""``records/dataset_info.json`` and friends: what ``tfds.builder_from_directory(out/records)``
reads to open the shards as a tfds data set."""

from __future__ import annotations

import os
import shutil
import tempfile

from data_pipelines.ingest import layout


def write_tfds_metadata(manifest: dict, records_dir: str) -> None:
    """Writes tfds's metadata files for the shards the manifest lists (none for an empty set)."""
    import tensorflow_datasets as tfds

    from data_pipelines import records

    split_infos = []
    for name, entry in manifest["splits"].items():
        if entry["shards"]:
            split_infos.append(
                tfds.core.SplitInfo(
                    name=name,
                    shard_lengths=[s["num_examples"] for s in entry["shards"]],
                    num_bytes=sum(s["num_bytes"] for s in entry["shards"]),
                )
            )
    if not split_infos:
        return
    # tfds writes its files in place. Let it write them into a scratch folder that holds empty
    # stand-ins of the shards (tfds reads only their names), then rename each into place, so a
    # reader never sees half a dataset_info.json. Scratch folders of killed runs go first.
    parent = os.path.dirname(os.path.abspath(records_dir))
    for name in os.listdir(parent):
        if name.startswith(layout.TFDS_SCRATCH_PREFIX):
            shutil.rmtree(os.path.join(parent, name))
    scratch = tempfile.mkdtemp(prefix=layout.TFDS_SCRATCH_PREFIX, dir=parent)
    try:
        shards = {s["file"] for entry in manifest["splits"].values() for s in entry["shards"]}
        for name in shards:
            open(os.path.join(scratch, name), "xb").close()  # an empty stand-in, never renamed
        tfds.folder_dataset.write_metadata(
            data_dir=scratch,
            features=records.tfds_features(),
            split_infos=split_infos,
            check_data=False,
            description="Geotagged photos for geoloc (multimodal geolocation paper §2); splits "
            "m1_train, m23_train, m23_val (appendix A); M1 validation = m23_train+m23_val.",
        )
        for name in sorted(set(os.listdir(scratch)) - shards):
            os.replace(os.path.join(scratch, name), os.path.join(records_dir, name))
    finally:
        shutil.rmtree(scratch)
