"""The `geoloc` console script: one command, one subcommand per tool.

`geoloc SUBCOMMAND ARGS...` is the same as `python -m MODULE ARGS...` for the module the table below
names; each module exposes `main(argv) -> int`, argv without the program name. Modules are imported only when their subcommand runs,
so `geoloc build-mesh` never loads TensorFlow. Only tools that exist are listed; later ones add a row.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

# subcommand -> (module, one-line description)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("experiments.run", "run the method's stages on a run directory (python -m experiments.run)"),
    "build-mesh": ("mesh.build", "build the adaptive Delaunay mesh from a CSV of coordinates"),
    "best-possible": ("mesh.best_possible", "best possible accuracy of a mesh on held-out photos"),
    "ingest": ("data_pipelines.ingest.cli", "YFCC100M/CSV metadata + photos to sharded TFRecords"),
    "make-demo": ("data_pipelines.demo.generate", "write the demo collection (real locations and "
                  "imagery; SIMULATED users, times, indoor photos)"),
    "contact-sheet": ("data_pipelines.demo.contact_sheet", "draw a contact sheet of demo photos"),
    "compare": ("geoloc_tf.evaluation.compare_cli", "put several runs' results side by side"),
    "evaluate": ("geoloc_tf.evaluation.external", "evaluate a trained model on an external test set "
                 "(Im2GPS-style CSV + images)"),
    "index": ("geoloc_tf.retrieval.index_cli", "store M1's features of a run's photos for search"),
    "search": ("geoloc_tf.retrieval.search_cli", "the indexed photos nearest to a query image"),
    "predict": ("geoloc_tf.inference.predict_cli", "locate photos: top cells, 50/90 % areas"),
    "serve": ("geoloc_tf.inference.server", "HTTP server: POST /predict with a trained model"),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in sorted(SUBCOMMANDS.items()))
    return (f"usage: geoloc SUBCOMMAND [ARGS...]\n\nsubcommands:\n{rows}\n\n"
            "`geoloc SUBCOMMAND --help` describes one.")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"geoloc: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
