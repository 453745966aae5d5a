"""absl flags derived from settings declarations, for the runner and for every `geoloc` subcommand.

A config dataclass declares its settings once (`mesh.settings.setting`); `define_setting_flags` turns
every leaf setting of the given sections into a typed absl flag named `--<section>_<field>` (or
`--<field>` for a section given the prefix ""), with a validator from the declaration, and
`configs_from_flags` builds the config objects back from the parsed values. A rule that spans fields
(`SettingError`) is reported with flag names. Flagfiles (`--flagfile=NAME`) are expanded here, so a
bad line is reported with its file and line number; bare names resolve to experiments/configs/ first.

Everything here raises `ConfigError` with one line that names the flag (and its flagfile:line), the
value and what is expected; nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from absl import flags

from experiments.errors import ConfigError
from mesh.settings import SettingError, field_kind, flat_settings, from_flat, value_problem

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"


def flag_name(prefix: str, field: str) -> str:
    """`--<prefix>_<field>`, or `--<field>` for the empty prefix."""
    return f"{prefix}_{field}" if prefix else field


def define_setting_flags(
    flag_values: flags.FlagValues,
    sections: Mapping[str, type],
    module_name: str | None = None,
    only: Sequence[str] | None = None,
) -> None:
    """Defines one flag per leaf setting of each section class, keyed by prefix in `sections`.

    `only`: define just these settings (a tool that takes a few of a section's settings).
    """
    for prefix, cls in sections.items():
        title = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
        module = module_name or f"geoloc [{prefix or cls.__name__}] {title}"
        for _, field, owner in flat_settings(cls):
            if only is not None and field.name not in only:
                continue
            name = flag_name(prefix, field.name)
            kind, is_tuple = field_kind(owner, field)
            factory = field.default_factory  # a setting has a default or a factory, never both
            default: Any = field.default if factory is dataclasses.MISSING else factory()
            help_text = field.metadata["help"]
            if field.metadata.get("choices"):
                help_text += f" Allowed: {', '.join(map(str, field.metadata['choices']))}."
            define = _DEFINERS.get(list if is_tuple else kind)
            if define is None:  # a new field type needs a definer here
                raise TypeError(f"no flag type for {owner.__name__}.{field.name}: {kind}")
            value = [str(v) for v in default] if is_tuple else default
            define(name, value, help_text, flag_values=flag_values, module_name=module)
            flags.register_validator(name, _validator(field, kind, is_tuple), flag_values=flag_values)


_DEFINERS: dict[type, Callable[..., Any]] = {
    list: flags.DEFINE_list,
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}


def _convert(kind: type, is_tuple: bool, raw: Any) -> Any:
    return tuple(kind(item) for item in raw) if is_tuple else raw


def _validator(field: dataclasses.Field, kind: type, is_tuple: bool):
    def check(raw: Any) -> bool:
        try:
            value = _convert(kind, is_tuple, raw)
        except ValueError:
            raise flags.ValidationError(f"every value must be a {kind.__name__}") from None
        problem = value_problem(field, value)
        if problem:
            raise flags.ValidationError(problem)
        return True

    return check


def configs_from_flags(
    flag_values: flags.FlagValues,
    sections: Mapping[str, type],
    only: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The config object of every section, built from the parsed flags.

    `only`: for a section (by prefix), the settings that have flags (`define_setting_flags`'s
    `only`); the others keep their defaults. A value or combination its class refuses raises
    ConfigError naming the flags.
    """
    only = only or {}
    return {prefix: _build(cls, flag_values, prefix, only.get(prefix)) for prefix, cls in sections.items()}


def _build(cls: type, flag_values: flags.FlagValues, prefix: str, only: Sequence[str] | None = None) -> Any:
    values = {
        field.name: _convert(*field_kind(owner, field), flag_values[flag_name(prefix, field.name)].value)
        for _, field, owner in flat_settings(cls)
        if only is None or field.name in only
    }
    try:
        return from_flat(cls, values)
    except SettingError as error:
        raise ConfigError(render_setting_error(error, prefix)) from None


def render_setting_error(error: SettingError, prefix: str) -> str:
    """A SettingError's message with flag names: `--<prefix>_<field>` (`--<field>` for the run's own
    cross-section rules, whose fields are already `<section>_<field>`)."""
    return error.render(
        lambda field: "--" + (field if error.owner == "RunConfig" else flag_name(prefix, field))
    )


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

    def expand(
        args: Sequence[str], where: list[str | None], stack: tuple[Path, ...], base: Path | None
    ) -> None:
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
                if (source := where[i]) is not None:
                    origin[len(out)] = source
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
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"flagfile {path}: cannot be read ({error})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith(("#", "//")):
            continue
        if not text.startswith("-"):
            raise ConfigError(f"{path}:{number}: expected a flag like --name=value, got {text!r}")
        args.append(text)
        where.append(f"{path}:{number}")
    return args, where


def parse(flag_values: flags.FlagValues, argv: Sequence[str]) -> list[str]:
    """Expands flagfiles and parses argv (argv[0]: the program) into `flag_values`; returns the
    positional arguments. Any problem raises ConfigError with one line naming the flag (and its
    flagfile:line), the value and what is allowed.
    """
    expanded, origin = expand_flagfiles(argv)
    if flag_values.is_parsed():  # a second parse in one process starts again from the defaults
        flag_values.unparse_flags()
    try:
        return flag_values(expanded)
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
