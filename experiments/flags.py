"""absl flags generated from the config sections, flagfile resolution, and parsing into a RunConfig.

This is the only module of the project that defines or reads absl flags (STYLE.md). Each field of a
section dataclass in `experiments.config` becomes the flag `--<section>_<field>`; its validator comes
from the field's metadata, so an invalid value fails before any work starts with a message naming the
flag, the value and what is allowed.

Flagfiles: `--flagfile=NAME` with a bare name (no '/') resolves to `experiments/configs/NAME` first
and to `./NAME` second, so `python -m experiments.run --flagfile=coarse.cfg` works verbatim from the
repository root (or anywhere). A name with a '/' is a path. Flagfiles may include other flagfiles the
same way. We expand flagfiles ourselves (absl's format: one flag per line, '#' or '//' comments) so a
bad line can be reported with its file and line number.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Sequence

from absl import flags

from experiments.config import SECTIONS, RunConfig, field_kind, validate_value
from experiments.errors import ConfigError

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
STAGE_NAMES = ("mesh", "data", "m1", "predict", "m2", "m3", "evaluate", "export")

FLAGS = flags.FLAGS

flags.DEFINE_string("run_dir", None, "Run directory: config.json, per-stage outputs, tensorboard/, "
                    "logs/. A rerun on the same directory continues where it stopped.")
flags.DEFINE_list("stages", list(STAGE_NAMES), "Stages to run, in this order: " + ", ".join(STAGE_NAMES)
                  + ". A stage whose outputs exist for the same config is skipped.")
flags.DEFINE_list("force_stages", [], "Stages to redo even if their outputs exist; stages downstream of "
                  "a redone stage are redone too.")


def _check_stage_list(names: list[str]) -> bool:
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown:
        raise flags.ValidationError(
            f"unknown stage(s) {', '.join(unknown)}; allowed: {', '.join(STAGE_NAMES)}")
    return True


flags.register_validator("stages", _check_stage_list)
flags.register_validator("force_stages", _check_stage_list)


def flag_name(section: str, field: dataclasses.Field) -> str:
    return f"{section}_{field.name}"


def _define_section_flags() -> None:
    for section, cls in SECTIONS.items():
        module = f"geoloc [{section}] {cls.__doc__.splitlines()[0]}"
        for field in dataclasses.fields(cls):
            name = flag_name(section, field)
            kind, is_tuple = field_kind(cls, field)
            default = field.default_factory() if field.default is dataclasses.MISSING else field.default
            help_text = field.metadata["help"]
            if field.metadata.get("choices"):
                help_text += f" Allowed: {', '.join(field.metadata['choices'])}."
            if is_tuple:
                flags.DEFINE_list(name, [str(v) for v in default], help_text, module_name=module)
            elif kind is bool:
                flags.DEFINE_bool(name, default, help_text, module_name=module)
            elif kind is int:
                flags.DEFINE_integer(name, default, help_text, module_name=module)
            elif kind is float:
                flags.DEFINE_float(name, default, help_text, module_name=module)
            elif kind is str:
                flags.DEFINE_string(name, default, help_text, module_name=module)
            else:  # pragma: no cover - a new field type needs a branch here
                raise TypeError(f"no flag type for {cls.__name__}.{field.name}: {kind}")
            flags.register_validator(name, _validator(cls, field, kind, is_tuple))


def _convert(kind: type, is_tuple: bool, raw: Any) -> Any:
    if not is_tuple:
        return raw
    return tuple(kind(item) for item in raw)


def _validator(cls: type, field: dataclasses.Field, kind: type, is_tuple: bool):
    def check(raw: Any) -> bool:
        try:
            value = _convert(kind, is_tuple, raw)
        except ValueError:
            raise flags.ValidationError(f"every value must be a {kind.__name__}") from None
        problem = validate_value(field, value)
        if problem:
            raise flags.ValidationError(problem)
        return True
    return check


_define_section_flags()

# Short names for the settings a GPU user reaches for first (BUILD.md): --strategy=mirrored etc.
for _short in ("strategy", "mixed_precision", "jit_compile"):
    flags.DEFINE_alias(_short, f"runtime_{_short}")


def resolve_flagfile(name: str, relative_to: Path | None = None) -> Path:
    """Finds a flagfile: bare names in experiments/configs/ first, then the working directory.

    Raises ConfigError naming every place looked at and the presets that exist.
    """
    candidates: list[Path] = []
    if "/" not in name:
        candidates.append(CONFIGS_DIR / name)
    if relative_to is not None and not Path(name).is_absolute():
        candidates.append(relative_to / name)
    candidates.append(Path(name))
    for path in candidates:
        if path.is_file():
            return path.resolve()
    presets = ", ".join(sorted(p.name for p in CONFIGS_DIR.glob("*.cfg")))
    looked = ", ".join(str(p) for p in dict.fromkeys(candidates))
    raise ConfigError(f"flagfile '{name}' not found (looked at {looked}); presets: {presets}")


def expand_flagfiles(argv: Sequence[str]) -> tuple[list[str], dict[int, str]]:
    """Replaces every --flagfile=X in argv by the flags it holds, recursively.

    Returns the expanded argv and, for each position that came from a file, 'file:line', so errors can
    name where a bad flag was written.
    """
    out: list[str] = []
    origin: dict[int, str] = {}

    def expand(args: Sequence[str], where: list[str | None], stack: tuple[Path, ...],
               base: Path | None) -> None:
        i = 0
        while i < len(args):
            arg = args[i]
            value = None
            if arg.startswith(("--flagfile=", "-flagfile=")):
                value = arg.split("=", 1)[1]
            elif arg in ("--flagfile", "-flagfile"):
                if i + 1 >= len(args):
                    raise ConfigError("--flagfile needs a file name")
                value = args[i + 1]
                i += 1
            if value is None:
                if where[i] is not None:
                    origin[len(out)] = where[i]
                out.append(arg)
                i += 1
                continue
            path = resolve_flagfile(value, base)
            if path in stack:
                raise ConfigError(f"flagfile {path} includes itself (via {' -> '.join(map(str, stack))})")
            lines, line_where = _read_flagfile(path)
            expand(lines, line_where, stack + (path,), path.parent)
            i += 1

    expand(list(argv), [None] * len(argv), (), None)
    return out, origin


def _read_flagfile(path: Path) -> tuple[list[str], list[str | None]]:
    args: list[str] = []
    where: list[str | None] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith(("#", "//")):
            continue
        if not text.startswith("-"):
            raise ConfigError(f"{path}:{number}: expected a flag like --name=value, got {text!r}")
        args.append(text)
        where.append(f"{path}:{number}")
    return args, where


def parse(argv: Sequence[str]) -> list[str]:
    """Expands flagfiles and parses argv into FLAGS; returns the positional arguments.

    Any problem raises ConfigError with one line naming the flag (and its flagfile:line), the value and
    what is allowed.
    """
    expanded, origin = expand_flagfiles(argv)
    if FLAGS.is_parsed():  # a second parse in one process starts again from the defaults
        FLAGS.unparse_flags()
    try:
        return FLAGS(expanded)
    except flags.Error as error:
        message = str(error)
        where = _where_flag_was_set(message, expanded, origin)
        raise ConfigError(f"{where}: {message}" if where else message) from None


_FLAG_IN_MESSAGE = re.compile(r"flag --(\w+)=|flag '(\w+)'")


def _where_flag_was_set(message: str, expanded: list[str], origin: dict[int, str]) -> str | None:
    """flagfile:line of the occurrence that set the flag an absl error names (the last one wins), or
    None when that occurrence is on the command line."""
    match = _FLAG_IN_MESSAGE.search(message)
    if not match:
        return None
    name = match.group(1) or match.group(2)
    for position in range(len(expanded) - 1, -1, -1):
        flag = expanded[position].lstrip("-").split("=", 1)[0]
        if flag in (name, f"no{name}"):
            return origin.get(position)
    return None


def run_config_from_flags() -> RunConfig:
    """Builds the frozen RunConfig from the parsed flags."""
    sections = {}
    for section, cls in SECTIONS.items():
        values = {}
        for field in dataclasses.fields(cls):
            kind, is_tuple = field_kind(cls, field)
            values[field.name] = _convert(kind, is_tuple, getattr(FLAGS, flag_name(section, field)))
        sections[section] = cls(**values)
    return RunConfig(**sections)
