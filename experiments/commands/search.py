"""`geoloc search`: the indexed photos nearest to a query image in M1's feature space.

    geoloc search IMAGE --index=DIR [--k=6] [--sheet=OUT.png] [--format=table|json]
                        [--lat=LAT --lon=LON] [--model=RUN_DIR] [--engine=auto|exact|faiss]

Query by example (paper appendix B, Figure 4; ``geoloc_tf.retrieval.query``): the k indexed photos
nearest to IMAGE by L2 distance of M1's features, printed as a table (or JSON) with their distances
and locations. With the query's true location (``--lat``/``--lon``) each neighbour also gets its
great-circle distance from it. ``--engine`` picks the exact search or the folder's FAISS index
(built on first use when missing). ``--sheet`` draws the Figure 4 sheet. The model defaults to the run
that built the index. Settings: ``geoloc_tf.retrieval.config.SearchConfig``; the rest are the
tool's own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from absl import flags

from experiments.commands import Command, missing_files_are_user_errors, require
from experiments.errors import ConfigError
from geoloc_tf.retrieval.config import SearchConfig


def _define_inputs(flag_values: flags.FlagValues) -> None:
    flags.DEFINE_string("index", None, "Index directory written by geoloc index.", flag_values=flag_values)
    flags.DEFINE_string(
        "model", None, "Run directory of M1 (default: the run that built the index).", flag_values=flag_values
    )
    flags.DEFINE_string(
        "sheet", None, "Draw the query sheet (Figure 4) to this PNG.", flag_values=flag_values
    )
    flags.DEFINE_float(
        "lat",
        None,
        "The query's true latitude, degrees.",
        lower_bound=-90.0,
        upper_bound=90.0,
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "lon",
        None,
        "The query's true longitude, degrees.",
        lower_bound=-180.0,
        upper_bound=180.0,
        flag_values=flag_values,
    )
    require(flag_values, "index")


def _run(configs: dict[str, Any], inputs: flags.FlagValues, positional: list[str]) -> int:
    from geoloc_tf.inference.m1_model import M1Model, lossless_png, read_photo
    from geoloc_tf.retrieval.feature_index import FeatureIndex
    from geoloc_tf.retrieval.query import format_table, model_dir, search_image, to_json

    config: SearchConfig = configs[""]
    if len(positional) != 1:
        raise ConfigError(
            f"geoloc search: expected one query IMAGE, got {len(positional)}: {' '.join(positional)}"
        )
    (query,) = positional
    if (inputs.lat is None) != (inputs.lon is None):
        raise ConfigError("--lat and --lon go together: give both or neither")
    with missing_files_are_user_errors():
        index = FeatureIndex.open(inputs.index)
        model = M1Model.load(model_dir(index, inputs.model))
        image = read_photo(query, config.decode.within(config.max_pixels), model.image_size)
        result = search_image(index, model, image, config, inputs.lat, inputs.lon)
        if inputs.sheet:
            from geoloc_tf.retrieval.sheet import draw_query_sheet, record_images

            draw_query_sheet(
                lossless_png(image),
                result,
                record_images(index, result["row"].to_numpy()),
                inputs.sheet,
                title=f"{Path(query).name}: {len(result)} nearest "
                f"of {len(index):,} indexed photos (L2 distance of M1 features)",
                query_lat=inputs.lat,
                query_lon=inputs.lon,
            )
    if config.format == "json":
        print(to_json(result, query, inputs.index, inputs.lat, inputs.lon))
    else:
        print(format_table(result))
    if inputs.sheet:
        print(f"sheet: {inputs.sheet}", file=sys.stderr)
    return 0


COMMAND = Command(
    name="search",
    summary="The indexed photos nearest to a query image in M1's feature space (appendix B, Figure 4).",
    sections={"": SearchConfig},
    define_inputs=_define_inputs,
    positional="IMAGE",
    run=_run,
)
