"""BUILD.md's table of limits against the declarations: every flag it names exists on the
commands of its row with the default it states, and every limit setting of `geoloc serve`, of the
image decoder's budget and of ingestion's readers has a row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from data_pipelines.config import DecodeBudget, IngestConfig
from geoloc_tf.inference.config import PredictFilesConfig, ServerConfig
from geoloc_tf.retrieval.config import SearchConfig
from geoloc_tf.run_configs import ExternalEvaluateConfig
from mesh.settings import default_values

BUILD_MD = Path(__file__).resolve().parents[2] / "BUILD.md"
COMMANDS = {
    "serve": ServerConfig,
    "predict": PredictFilesConfig,
    "search": SearchConfig,
    "evaluate": ExternalEvaluateConfig,
    "ingest": IngestConfig,
}
FLAG = re.compile(r"`--(\w+)` \(([^)]*)\)")


def table_rows() -> list[list[str]]:
    text = BUILD_MD.read_text(encoding="utf-8")
    section = text[text.index("\n## Limits\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| where")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def stated(text: str, command: str) -> str:
    """The default a row states for ``command``: "5", or "serve 50000000, the others 100000000"."""
    if re.fullmatch(r"[\d.]+", text):
        return text
    pairs = dict(part.strip().rsplit(" ", 1) for part in text.split(","))
    return pairs.get(command, pairs.get("the others", ""))


def test_every_flag_in_the_table_has_the_stated_default_on_the_commands_of_its_row():
    checked = 0
    for where, *cells in table_rows():
        commands = [c.strip() for c in where.split(",")]
        for name, text in FLAG.findall(" | ".join(cells)):
            for command in commands:
                assert command in COMMANDS, f"row {where!r} names --{name} for an unknown command"
                defaults = default_values(COMMANDS[command])
                assert name in defaults, f"--{name} is not a setting of geoloc {command}"
                assert float(stated(text, command)) == float(defaults[name]), (name, command)
                checked += 1
    assert checked >= 30


@pytest.mark.parametrize(
    "config, names",
    [
        (ServerConfig, None),
        (DecodeBudget, None),
        (IngestConfig, ["max_line_bytes", "max_field_bytes", "max_pixels"]),
    ],
)
def test_every_limit_setting_has_a_row(config, names):
    table = " ".join(" ".join(row) for row in table_rows())
    limits = names or [n for n in default_values(config) if re.match(r"max_|decode_|.*_timeout_s$", n)]
    assert limits
    missing = [name for name in limits if f"`--{name}`" not in table]
    assert not missing, f"BUILD.md's table of limits has no row for {missing}"
