"""What every stage shares: its settings fingerprint, its markers, and the barrier that ends it.

A stage writes `<stage dir>/SETTINGS.json` (the config fields its outputs depend on) when it
STARTS, and `<stage dir>/COMPLETE` when every process has finished it. A rerun compares the
config with SETTINGS.json first: equal settings resume a half-finished stage (or skip a finished
one); different ones are refused with `SettingsChangedError` naming each changed field, before
anything is loaded or written. Only process 0 writes these shared files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import jax
from absl import logging
from etils import epath

from ssd_jax.errors import SettingsChangedError
from ssd_jax.parallel.distributed import barrier
from ssd_jax.workdir import Workdir


def flat_fields(config: Mapping, fields: Iterable[str], exclude: Iterable[str] = ()) -> dict[str, Any]:
    """`fields` of `config` (a section name takes all of it) as `dotted.name -> plain value`."""
    flat: dict[str, Any] = {}

    def add(name: str, value: Any) -> None:
        if hasattr(value, "to_dict"):
            value = value.to_dict()
        if isinstance(value, Mapping):
            for key, inner in value.items():
                add(f"{name}.{key}", inner)
        else:
            flat[name] = json.loads(json.dumps(value, default=str))  # tuples become lists, as stored

    for name in fields:
        add(name, config[name])
    excluded = set(exclude)
    return {name: value for name, value in sorted(flat.items()) if name not in excluded}


def changed_fields(started: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """`field: old → new` for every field that differs (absent on one side: `(unset)`)."""
    missing = object()

    def show(value: Any) -> str:
        return "(unset)" if value is missing else json.dumps(value)

    return [f"{name}: {show(started.get(name, missing))} → {show(wanted.get(name, missing))}"
            for name in sorted(set(started) | set(wanted)) if started.get(name, missing) != wanted.get(name, missing)]


def _has_outputs(directory: epath.Path, settings_file: epath.Path) -> bool:
    """Whether `directory` holds any file besides the settings record (empty folders don't count)."""
    pending = [directory] if directory.exists() else []
    while pending:
        for entry in pending.pop().iterdir():
            if entry.is_dir():
                pending.append(entry)
            elif entry != settings_file:
                return True
    return False


def check_settings(workdir: Workdir, stage: str, wanted: Mapping[str, Any],
                   retired: Iterable[str] = ()) -> dict | None:
    """Refuses a stage whose outputs were started with other settings; returns its COMPLETE
    marker's content when it already finished with these settings, else None. A stage that
    recorded its settings but wrote nothing yet (it failed on its input) starts afresh.
    `retired` fields (no longer part of the stage's fingerprint) are ignored in what was recorded."""
    for path in (workdir.marker(stage), workdir.settings(stage)):
        if not path.exists():
            continue
        if path == workdir.settings(stage) and not _has_outputs(workdir.stage_dir(stage), path):
            if jax.process_index() == 0:
                path.unlink()
            continue
        recorded = json.loads(path.read_text())
        started = {name: value for name, value in recorded["settings"].items() if name not in set(retired)}
        changes = changed_fields(started, wanted)
        if changes:
            state = "finished" if path == workdir.marker(stage) else "half-finished"
            raise SettingsChangedError(
                f"{workdir.stage_dir(stage)} holds a {state} '{stage}' stage started with other settings: "
                + "; ".join(changes)
                + f". Nothing was changed. Restore those settings to resume, or use a new config.workdir "
                f"(or delete {workdir.stage_dir(stage)} to redo the stage)."
            )
        if path == workdir.marker(stage):
            return recorded
    return None


def start(workdir: Workdir, stage: str, settings: Mapping[str, Any]) -> None:
    """Records the settings the stage starts with (process 0; kept if already there)."""
    path = workdir.settings(stage)
    if jax.process_index() == 0 and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"stage": stage, "settings": dict(settings)}, indent=2))


def finish(workdir: Workdir, stage: str, settings: Mapping[str, Any], result: Any) -> None:
    """Waits for every process, then marks the stage complete (process 0)."""
    barrier(f"ssd_jax stage {stage} done")
    if jax.process_index() == 0:
        workdir.marker(stage).write_text(
            json.dumps({"stage": stage, "settings": dict(settings), "result": result}, indent=2, default=str))
    logging.info("stage %s complete in %s", stage, workdir.stage_dir(stage))
