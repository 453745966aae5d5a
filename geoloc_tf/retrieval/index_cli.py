"""`geoloc index`: store M1's penultimate features of a run's photos for query by example.

    geoloc index --model=RUN_DIR [--split=m1_train] [--out=RUN_DIR/index/m1_train]

Runs the run's M1 over one split of its TFRecords (paper appendix B: retrieval by M1's 1536-d
features) and writes a ``FeatureIndex`` directory. A killed build, rerun with the same command,
redoes only the record shards it had not finished.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Sequence

from data_pipelines.splits import M1_TRAIN


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geoloc index", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="run directory (m1/m1.keras and data/)")
    parser.add_argument("--split", default=M1_TRAIN,
                        help="split of the run's data set to index (default: M1's training photos)")
    parser.add_argument("--out", default=None, help="index directory (default RUN_DIR/index/SPLIT)")
    parser.add_argument("--batch_size", type=int, default=128, help="photos per M1 forward pass")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s] %(message)s")
    from data_pipelines.errors import DataPipelineError
    from geoloc_tf.errors import GeolocTfError
    from geoloc_tf.retrieval.feature_index import build_index

    started = time.monotonic()
    try:
        index = build_index(args.model, args.split, args.out, args.batch_size)
    except (GeolocTfError, DataPipelineError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    seconds = time.monotonic() - started
    print(f"{len(index)} photos x {index.dim} features indexed in {seconds:.0f} s "
          f"({len(index) / max(seconds, 1e-9):.0f} photos/s): {index.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
