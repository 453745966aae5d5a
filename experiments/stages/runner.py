"""Runs stages in order on a run directory, skipping what is already done, so a rerun resumes.

Each finished stage leaves a record `run_dir/stages/<stage>.json` (written last, atomically) with:
the values of the config sections it reads, a fingerprint of them, the token of each upstream stage
it consumed, its own fresh token, its artifacts, its wall time and the Keras backend it ran on (not
a setting: a run resumes on another backend). On a rerun a stage is

- skipped when its record exists, the fingerprint matches, every upstream token is still current and
  every artifact still exists;
- redone when an upstream stage was redone (its token changed), an artifact is missing, or the user
  names it in `--force_stages`;
- refused when its record was made with other settings: a finished, possibly days-long, stage is
  never overwritten by a flag typed by mistake. The error names the differing flags and the two ways
  out (another --run_dir, or --force_stages).

A setting added to geoloc after a stage finished is absent from its record. New settings default
to the behaviour that came before them (the paper's, or the earlier default), so such a setting
counts as unchanged while it holds its default; set to anything else, the stage is made with other
settings (``recorded_settings``).

The record also holds the size and SHA-256 of each artifact that is a file (``checksums``,
``mesh.integrity``). Before a stage runs, the artifacts of every stage upstream of it are checked
against them (``check_artifacts``): a table, model or mesh damaged since it was written is one
error line naming it and the stage to redo, not a traceback half-way through the stage that reads
it. A record written before checksums is accepted with one warning per file.

A stage that was killed half-way has no record, so it runs again; stages that take long (training)
resume from their own checkpoints inside their output folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, cast

from experiments.config import RunConfig
from experiments.errors import StageError
from experiments.stages.registry import STAGES, Stage
from geoloc_tf import keras_backend
from geoloc_tf.run_layout import RunLayout
from mesh.atomic import write_text_atomic
from mesh.integrity import check_written, file_entry
from mesh.settings import default_values, flat_values

log = logging.getLogger(__name__)

RECORD_VERSION = 1


def record_path(run_dir: Path, name: str) -> Path:
    return RunLayout(run_dir).stage_record(name)


def stage_settings(stage: Stage, config: RunConfig) -> dict[str, dict]:
    """{section: {setting: value}} of the settings that decide the stage's outputs (flag names)."""
    return {section: flat_values(config.section(section), outputs_only=True) for section in stage.reads}


def fingerprint(settings: dict[str, dict]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def recorded_settings(stage: Stage, config: RunConfig, record: dict) -> dict[str, dict]:
    """The stage's settings as ``record`` can have known them: those absent from the record (added
    to geoloc after it was written) are left out while they hold their declared default."""
    settings = stage_settings(stage, config)
    recorded = record.get("settings", {})
    out = {}
    for section, values in settings.items():
        defaults = default_values(type(config.section(section)), outputs_only=True)
        known = recorded.get(section, {})
        out[section] = {
            key: value
            for key, value in values.items()
            if key in known or key not in defaults or value != defaults[key]
        }
    return out


def read_record(run_dir: Path, name: str) -> dict | None:
    path = record_path(run_dir, name)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise StageError(
            f"{path}: unreadable stage record ({error}); delete it to redo stage {name}"
        ) from None
    if record.get("record_version") != RECORD_VERSION:
        raise StageError(
            f"{path}: record_version {record.get('record_version')!r}, this geoloc reads {RECORD_VERSION}"
        )
    return record


def _changed_flags(old: dict[str, dict], new: dict[str, dict]) -> list[str]:
    changes = []
    for section in sorted(set(old) | set(new)):
        before, after = old.get(section, {}), new.get(section, {})
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                changes.append(f"--{section}_{key}: {before.get(key)!r} -> {after.get(key)!r}")
    return changes


@dataclass
class StageOutcome:
    name: str
    action: str  # "skipped" or "ran"
    seconds: float
    artifacts: dict[str, str]


def run_stages(
    config: RunConfig,
    run_dir: Path,
    stages: Sequence[str],
    force_stages: Sequence[str] = (),
    on_stage_start: Callable[[str, str], None] | None = None,
    registry: Sequence[Stage] = STAGES,
) -> list[StageOutcome]:
    """Runs the named stages in the canonical order; returns what each did.

    Raises StageError before running anything when a selected stage, or a stage it needs, holds
    outputs made with other settings, or when a needed upstream stage has no outputs and is not
    selected. `registry` is the ordered list of stages (the method's, unless a test gives its own).
    """
    run_dir = Path(run_dir)
    selected = [stage for stage in registry if stage.name in set(stages)]
    forced = set(force_stages)
    records = {stage.name: read_record(run_dir, stage.name) for stage in registry}
    by_name = {stage.name: stage for stage in registry}
    _refuse_changed_settings(config, run_dir, registry, selected, records, forced)

    outcomes: list[StageOutcome] = []
    redone: set[str] = set()
    for stage in selected:
        record = records[stage.name]
        reason = _why_run(stage, config, run_dir, record, records, forced, redone)
        if reason is None:
            log.info("stage %s: done already (%s), skipped", stage.name, record_path(run_dir, stage.name))
            done = cast(dict, record)  # _why_run gives None only to a stage that has a record
            outcomes.append(StageOutcome(stage.name, "skipped", 0.0, done["artifacts"]))
            continue
        missing = [need for need in stage.needs if records[need] is None]
        if missing:
            raise StageError(
                f"stage {stage.name} needs the outputs of stage(s) {', '.join(missing)}, which {run_dir} "
                f"does not hold; add them to --stages"
            )
        for upstream in sorted(_upstream(stage.name, by_name), key=list(by_name).index):
            check_artifacts(run_dir, upstream, records[upstream])
        if on_stage_start:
            on_stage_start(stage.name, reason)
        log.info("stage %s: running (%s)", stage.name, reason)
        started = time.monotonic()
        RunLayout(run_dir).stage_dir(stage.name).mkdir(parents=True, exist_ok=True)
        backend = keras_backend()
        if stage.backend not in (None, backend):
            from experiments.stages.child import run_in_child

            artifacts, backend = run_in_child(stage, config, run_dir), str(stage.backend)
        else:
            artifacts = stage.run(config, run_dir)
        seconds = time.monotonic() - started
        records[stage.name] = _write_record(config, run_dir, stage, records, artifacts, seconds, backend)
        redone.add(stage.name)
        log.info("stage %s: finished in %.1f s", stage.name, seconds)
        outcomes.append(StageOutcome(stage.name, "ran", seconds, artifacts))
    return outcomes


def _refuse_changed_settings(
    config: RunConfig,
    run_dir: Path,
    registry: Sequence[Stage],
    selected: list[Stage],
    records: dict[str, dict | None],
    forced: set[str],
) -> None:
    by_name = {stage.name: stage for stage in registry}
    to_check: set[str] = set()
    for stage in selected:
        to_check.add(stage.name)
        to_check.update(_upstream(stage.name, by_name))
    for stage in registry:
        record = records[stage.name]
        if stage.name not in to_check or record is None or stage.name in forced:
            continue
        settings = recorded_settings(stage, config, record)
        if record["fingerprint"] != fingerprint(settings):
            changes = "; ".join(_changed_flags(record["settings"], settings))
            raise StageError(
                f"{run_dir} holds stage {stage.name} made with other settings ({changes}); use another "
                f"--run_dir, or --force_stages={stage.name} to redo it and the stages that need it"
            )


def _upstream(name: str, by_name: dict[str, Stage]) -> set[str]:
    found: set[str] = set()
    for need in by_name[name].needs:
        found.add(need)
        found |= _upstream(need, by_name)
    return found


def _why_run(
    stage: Stage,
    config: RunConfig,
    run_dir: Path,
    record: dict | None,
    records: dict[str, dict | None],
    forced: set[str],
    redone: set[str],
) -> str | None:
    """The reason a stage must run, or None when its outputs are current."""
    if stage.name in forced:
        return "forced by --force_stages"
    if record is None:
        return "no outputs yet"
    changed_needs = [
        need
        for need in stage.needs
        if need in redone or records[need] is None or record["upstream"].get(need) != _token(records, need)
    ]
    if changed_needs:
        return f"upstream stage(s) {', '.join(changed_needs)} were redone"
    missing = [path for path in record["artifacts"].values() if not (run_dir / path).exists()]
    if missing:
        return f"artifact(s) missing: {', '.join(missing)}"
    return None


def check_artifacts(run_dir: Path, name: str, record: dict | None) -> None:
    """Checks each file artifact of stage ``name`` against the size and SHA-256 in its record
    (``mesh.integrity.check_written``); folders (a SavedModel) are left to their own loaders."""
    if record is None:
        return
    checksums = record.get("checksums")
    remedy = f"redo stage {name} with --force_stages={name}"
    for path in record["artifacts"].values():
        if checksums is None:
            if not (run_dir / path).is_dir():
                check_written(run_dir / path, None, remedy)
        elif path in checksums:
            check_written(run_dir / path, checksums[path], remedy)


def _token(records: dict[str, dict | None], name: str) -> str:
    """The token of stage ``name``'s record (run_stages runs a stage only when its needs have one)."""
    record = records[name]
    if record is None:
        raise StageError(f"stage {name} has no record; expected its outputs in the run directory")
    return record["token"]


def _write_record(
    config: RunConfig,
    run_dir: Path,
    stage: Stage,
    records: dict[str, dict | None],
    artifacts: dict[str, str],
    seconds: float,
    backend: str,
) -> dict:
    settings = stage_settings(stage, config)
    record = {
        "record_version": RECORD_VERSION,
        "stage": stage.name,
        "settings": settings,
        "fingerprint": fingerprint(settings),
        "upstream": {need: _token(records, need) for need in stage.needs},
        "token": uuid.uuid4().hex,
        "artifacts": artifacts,
        "checksums": {
            path: file_entry(run_dir / path) for path in artifacts.values() if (run_dir / path).is_file()
        },
        "seconds": round(seconds, 3),
        "keras_backend": backend,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_text_atomic(record_path(run_dir, stage.name), json.dumps(record, indent=2, sort_keys=True))
    return record
