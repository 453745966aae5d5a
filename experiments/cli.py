"""The `geoloc` console script: one command, one subcommand per tool.

`geoloc SUBCOMMAND --flag=value ...`. A subcommand whose module defines `COMMAND` (an
`experiments.commands.Command`) takes options derived from the same settings declarations as the
runner; `geoloc run` is the runner itself. Modules are imported only when their subcommand runs, so
`geoloc build-mesh` never loads TensorFlow. Every subcommand reports a user's mistake as one
`error: ...` line with exit status 2 (experiments.errors).
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from experiments.errors import EXIT_USER_ERROR, one_line, user_errors

# subcommand -> ("module" or "module:ATTRIBUTE" of its Command (default COMMAND), description)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("experiments.run", "run the method's stages on a run directory (python -m experiments.run)"),
    "build-mesh": (
        "experiments.commands.build_mesh",
        "build the adaptive Delaunay mesh from a CSV of coordinates",
    ),
    "best-possible": (
        "experiments.commands.best_possible",
        "best possible accuracy of a mesh on held-out photos",
    ),
    "ingest": ("experiments.commands.ingest", "YFCC100M/CSV metadata + photos to sharded TFRecords"),
    "make-demo": (
        "experiments.commands.demo:MAKE_DEMO",
        "write the demo collection (real locations and imagery; SIMULATED users, times, indoor photos)",
    ),
    "contact-sheet": ("experiments.commands.demo:CONTACT_SHEET", "draw a contact sheet of demo photos"),
    "compare": ("experiments.commands.compare", "put several runs' results side by side"),
    "evaluate": (
        "experiments.commands.evaluate",
        "evaluate a trained model on an external test set (Im2GPS-style CSV + images)",
    ),
    "index": ("experiments.commands.index", "store M1's features of a run's photos for search"),
    "search": ("experiments.commands.search", "the indexed photos nearest to a query image"),
    "predict": ("experiments.commands.predict", "locate photos: top cells, 50/90 % areas"),
    "serve": ("experiments.commands.serve", "HTTP server: POST /predict with a trained model"),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in sorted(SUBCOMMANDS.items()))
    return (
        f"usage: geoloc SUBCOMMAND [--flag=value ...]\n\nsubcommands:\n{rows}\n\n"
        "`geoloc SUBCOMMAND --help` describes one. Exit status: 0 done, 2 a user error "
        "(one 'error:' line), 130 interrupted."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"geoloc: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USER_ERROR
    module_name, _, attribute = SUBCOMMANDS[name][0].partition(":")
    module = importlib.import_module(module_name)
    command = getattr(module, attribute or "COMMAND", None)
    if command is not None:
        from experiments.commands import run_command

        return run_command(command, rest)
    try:
        return module.main(rest)
    except user_errors() as error:
        print(one_line(error), file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
