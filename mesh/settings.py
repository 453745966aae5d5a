"""Declaring a setting once: its default, help text, bounds and choices, on the config dataclass of the
code that uses it: each fact lives once.

Every package's config dataclass declares its fields with `setting(...)` and calls
`check_settings(self)` first thing in `__post_init__`; cross-field rules follow there and raise
`SettingError` naming the fields involved. `experiments` derives the runner's `--<section>_<field>`
flags, `config.json`, stage fingerprints and the `geoloc` subcommands' options from these
declarations, and renders a `SettingError` with flag names (`--m3_album_evidence`) where library code
renders it with field names (`M3Config.album_evidence`). This module lives in `mesh`, the bottom of
the package stack, so every package can use it without importing upwards, and it imports neither
TensorFlow nor numpy: parsing flags stays fast.

A field whose type is itself a config dataclass is *nested*: its settings become settings of the
enclosing section under their own names (``IngestConfig.splits.seed`` is ``--data_seed``), so nested
field names must not collide with the enclosing ones.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable, Iterator, Mapping


def setting(
    default: Any,
    help: str,  # noqa: A002 - the word every flag library uses
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    min_exclusive: bool = False,
    max_exclusive: bool = False,
    choices: tuple[Any, ...] | None = None,
    check: Callable[[Any], str | None] | None = None,
    affects_outputs: bool = True,
) -> Any:
    """Declares one setting as a dataclass field.

    `minimum`/`maximum` bound numbers (every element of a tuple); `choices` restricts values (every
    element of a tuple); `check` returns an error sentence (or None) for what bounds cannot say.
    `affects_outputs=False` marks a setting that changes how, not what, is computed (worker count):
    it is left out of stage fingerprints.
    """
    meta = {
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "min_exclusive": min_exclusive,
        "max_exclusive": max_exclusive,
        "choices": choices,
        "check": check,
        "affects_outputs": affects_outputs,
    }
    if isinstance(default, (list, tuple)):
        frozen = tuple(default)
        return dataclasses.field(default_factory=lambda: frozen, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def nested(cls: type, help: str = "") -> Any:  # noqa: A002
    """A field holding another config dataclass whose settings join the enclosing section's."""
    return dataclasses.field(default_factory=cls, metadata={"help": help, "nested": True})


class SettingError(ValueError):
    """A setting's value, or a combination of settings, that is not allowed.

    `template` names fields as ``{field}`` placeholders; `render` fills them in, by default as
    ``ClassName.field``, in the runner as ``--section_field``. `fields` lists them in order.
    """

    def __init__(self, owner: str, template: str, fields: tuple[str, ...]):
        self.owner = owner
        self.template = template
        self.fields = fields
        super().__init__(self.render())

    def render(self, name: Callable[[str], str] | None = None) -> str:
        name = name or (lambda field: f"{self.owner}.{field}")
        return self.template.format(**{field: name(field) for field in self.fields})


def setting_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a config dataclass that are declared settings (nested ones included)."""
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def flat_settings(cls: type) -> Iterator[tuple[tuple[str, ...], dataclasses.Field, type]]:
    """(path of field names, field, owning class) for every leaf setting, nested ones flattened.

    A path of ("splits", "seed") is the setting `seed` of the nested `splits` field.
    """
    for field in setting_fields(cls):
        if field.metadata.get("nested"):
            inner = typing.get_type_hints(cls)[field.name]
            for path, leaf, owner in flat_settings(inner):
                yield (field.name,) + path, leaf, owner
        else:
            yield (field.name,), field, cls


def default_values(cls: type, outputs_only: bool = False) -> dict[str, Any]:
    """{leaf setting name: JSON-ready declared default} of a config dataclass, read from the
    declarations (no instance is built, so classes whose defaults alone do not validate, e.g. a
    data source that needs a file, work too); ``outputs_only`` as in ``flat_values``."""
    out: dict[str, Any] = {}
    for _, field, _ in flat_settings(cls):
        if outputs_only and not field.metadata.get("affects_outputs", True):
            continue
        if field.default is not dataclasses.MISSING:
            value = field.default
        elif field.default_factory is not dataclasses.MISSING:
            value = field.default_factory()
        else:
            continue
        out[field.name] = list(value) if isinstance(value, tuple) else value
    return out


def from_flat(cls: type, values: Mapping[str, Any]) -> Any:
    """Builds a config dataclass from leaf settings keyed by their own names, nested ones included
    (``{"seed": 3}`` sets ``IngestConfig.splits.seed``), as flags and command-line options name
    them; the inverse of ``flat_values`` (a JSON list becomes the setting's tuple). Settings left
    out keep their defaults; a name that is no setting raises ValueError."""
    leaves = {path[-1] for path, _, _ in flat_settings(cls)}
    unknown = set(values) - leaves
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)} for {cls.__name__}")
    kwargs: dict[str, Any] = {}
    for field in setting_fields(cls):
        if field.metadata.get("nested"):
            inner = typing.get_type_hints(cls)[field.name]
            inner_names = {path[-1] for path, _, _ in flat_settings(inner)}
            kwargs[field.name] = from_flat(inner, {k: v for k, v in values.items() if k in inner_names})
        elif field.name in values:
            value = values[field.name]
            kwargs[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def field_kind(cls: type, field: dataclasses.Field) -> tuple[type, bool]:
    """(element type, is_tuple) of a setting, from its annotation (Optional[X] gives X)."""
    hint = typing.get_type_hints(cls)[field.name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True
    return hint, False


def value_problem(field: dataclasses.Field, value: Any) -> str | None:
    """The sentence saying what is wrong with a value for this setting, or None when it is allowed."""
    meta = field.metadata
    for v in value if isinstance(value, tuple) else (value,):
        if v is None:
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            lo, hi = meta.get("minimum"), meta.get("maximum")
            if lo is not None and (v < lo or (meta.get("min_exclusive") and v == lo)):
                return f"must be {'>' if meta.get('min_exclusive') else '>='} {lo}"
            if hi is not None and (v > hi or (meta.get("max_exclusive") and v == hi)):
                return f"must be {'<' if meta.get('max_exclusive') else '<='} {hi}"
        choices = meta.get("choices")
        if choices and v not in choices:
            return f"must be one of {', '.join(map(str, choices))}"
    check = meta.get("check")
    return check(value) if check else None


def check_settings(instance: Any) -> None:
    """Checks every declared setting of a config dataclass instance against its declaration.

    Call it first in `__post_init__`. Raises SettingError naming the first bad field.
    """
    owner = type(instance).__name__
    for field in setting_fields(type(instance)):
        if field.metadata.get("nested"):
            continue  # the nested instance checked itself when it was made
        problem = value_problem(field, getattr(instance, field.name))
        if problem:
            value = getattr(instance, field.name)
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else repr(value)
            raise SettingError(
                owner, "{%s}=%s: %s" % (field.name, _brace_safe(shown), problem), (field.name,)
            )


def _brace_safe(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def flat_values(instance: Any, outputs_only: bool = False) -> dict[str, Any]:
    """{leaf setting name: JSON-ready value} of a config dataclass, nested settings flattened (their
    names are the flags' names). `outputs_only` leaves out settings declared with
    `affects_outputs=False`, for fingerprints of what a stage produced."""
    out: dict[str, Any] = {}
    for path, field, _ in flat_settings(type(instance)):
        if outputs_only and not field.metadata.get("affects_outputs", True):
            continue
        value = instance
        for name in path:
            value = getattr(value, name)
        out[field.name] = list(value) if isinstance(value, tuple) else value
    return out
