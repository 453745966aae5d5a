"""Outdoor probabilities from a YFCC100M autotags file, joined into the written data set."""

import numpy as np

from data_pipelines import ingest
from data_pipelines.config import IngestConfig
from data_pipelines.dataset import load
from data_pipelines.readers.autotags import read_outdoor_probabilities


def write_autotags(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_reader_takes_outdoor_else_one_minus_indoor_and_counts_bad_lines(tmp_path):
    path = write_autotags(
        tmp_path / "autotags",
        [
            "1000\tsky:0.9,outdoor:0.8,indoor:0.1",  # outdoor given: 0.8
            "1001\tindoor:0.75,food:0.9",  # only indoor: 1 - 0.75
            "1002\tcat:0.99",  # no scene tag: unknown, not listed
            "not-an-id\toutdoor:0.5",  # bad line
            "1003",  # bad line (no tab)
            "1004\toutdoor:1.7",  # out of range: ignored
        ],
    )
    table, counts = read_outdoor_probabilities(path)
    assert list(table["photo_id"]) == ["1000", "1001"]
    np.testing.assert_allclose(table["outdoor_prob"], [0.8, 0.25], rtol=1e-6)
    assert counts["lines"] == 6 and counts["bad_lines"] == 2 and counts["with_scene_tag"] == 2
    assert counts["bad_examples"][0].endswith("expected 'photo id<TAB>tag:confidence,...'")
    assert ":4:" in counts["bad_examples"][0]


def test_ingestion_fills_outdoor_probability_from_autotags(tmp_path, collection):
    metadata, images = collection  # conftest: photos 1000..1023
    autotags = write_autotags(
        tmp_path / "autotags",
        [f"{1000 + i}\toutdoor:{i / 20:.2f},indoor:{1 - i / 20:.2f}" for i in range(0, 12, 2)],
    )
    out = tmp_path / "out"
    ingest.run_ingestion(
        IngestConfig(
            metadata=(metadata,),
            images=images,
            autotags=(autotags,),
            max_image_side=32,
            examples_per_shard=8,
            workers=1,
            salt="s",
        ),
        str(out),
    )
    table = load(str(out)).table("m1_train+m23_train+m23_val")
    by_id = dict(zip(table["photo_id"], table["outdoor_prob"]))
    filled = [by_id[str(1000 + i)] for i in range(0, 12, 2)]
    np.testing.assert_allclose(filled, [i / 20 for i in range(0, 12, 2)], rtol=1e-6)
    unknown = [by_id[str(1000 + i)] for i in range(1, 24, 2)]
    assert np.isnan(unknown).all()  # no autotag line: still unknown
