"""Outdoor probabilities from YFCC100M's autotags file (`yfcc100m_autotags`).

YFCC100M ships, beside its metadata, the output of a visual concept classifier for every photo:
one line per photo, `photo id <TAB> tag:confidence,tag:confidence,...`, among them the scene
concepts `outdoor` and `indoor`. The paper filters on outdoor photos (§4.1.2, Table 4) and
suggests the outdoor probability as an input of M2 (§5); this reader turns the autotags into that
probability: the `outdoor` confidence when present, else 1 - the `indoor` confidence, else unknown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_pipelines import errors
from data_pipelines.readers import common


def read_outdoor_probabilities(
    path: str, max_line_bytes: int = common.MAX_LINE_BYTES
) -> tuple[pd.DataFrame, dict]:
    """(table of photo_id -> outdoor_prob for photos with an indoor/outdoor tag, line counts).

    Lines that are not `id <TAB> tags`, or longer than ``max_line_bytes``, are counted as bad,
    never fatal (nor held whole); the counts dict holds
    `lines`, `bad_lines`, `with_scene_tag` and the first bad lines as file:line.
    """
    ids: list[str] = []
    probabilities: list[float] = []
    counts: dict[str, Any] = {"lines": 0, "bad_lines": 0, "with_scene_tag": 0, "bad_examples": []}
    try:
        opened = common.open_binary(path)
    except OSError as error:
        raise errors.ConfigError(
            f"--autotags: {path}: cannot open ({error.strerror}); expected a yfcc100m_autotags file"
        ) from None
    try:
        for number, line in common.iter_lines(opened, max_line_bytes):
            if isinstance(line, common.Overlong):
                photo_id, tab, tags = b"", b"", b""
            elif not line.strip():
                continue
            else:
                photo_id, tab, tags = line.partition(b"\t")
            counts["lines"] += 1
            if not tab or not photo_id.strip().isdigit():
                counts["bad_lines"] += 1
                if len(counts["bad_examples"]) < 5:
                    counts["bad_examples"].append(
                        f"{errors.where(path, number)}: expected 'photo id<TAB>tag:confidence,...'"
                    )
                continue
            outdoor = indoor = None
            for item in tags.strip().split(b","):
                name, _, value = item.partition(b":")
                if name in (b"outdoor", b"indoor"):
                    try:
                        confidence = float(value)
                    except ValueError:
                        continue
                    if 0.0 <= confidence <= 1.0:
                        if name == b"outdoor":
                            outdoor = confidence
                        else:
                            indoor = confidence
            if outdoor is not None:
                probability = outdoor
            elif indoor is not None:
                probability = 1.0 - indoor
            else:
                continue
            ids.append(photo_id.strip().decode("ascii"))
            probabilities.append(probability)
            counts["with_scene_tag"] += 1
    finally:
        opened.close()
    table = pd.DataFrame({"photo_id": ids, "outdoor_prob": np.asarray(probabilities, np.float32)})
    return table.drop_duplicates("photo_id", keep="first"), counts
