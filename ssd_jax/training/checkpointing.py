"""Training checkpoints: parameters, optimizer state, data-iterator state and the run's fingerprint.

An Orbax `CheckpointManager` under `<workdir>/train/checkpoints/<step>/` with four items:
`params` and `opt_state` (sharded arrays, written collectively, asynchronously), `data` (each
process's Grain iterator state, Grain's own Orbax handler) and `run` (the fingerprint: model,
architecture, data and optimizer settings). A checkpoint is only ever resumed by a run with
the same fingerprint; anything else is refused before a byte is written.

A checkpoint that cannot be restored (damaged files, an interrupted copy) stops the run with a
`CheckpointRestoreError` naming its step. Only with `config.train.restore_fallback=True` does
training resume from the newest checkpoint that restores; the unreadable newer ones are then
renamed `<step>.unreadable` (kept for inspection, ignored by Orbax).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath

from ssd_jax.errors import InputError, SettingsChangedError
from ssd_jax.reading import root_cause

logger = logging.getLogger(__name__)
UNREADABLE_SUFFIX = ".unreadable"


class RunMismatchError(SettingsChangedError):
    """The work directory holds a checkpoint of a different model or configuration."""


class CheckpointRestoreError(InputError):
    """A training checkpoint that cannot be read back."""


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


def _normalise(tree: Any) -> Any:
    """JSON round trip, so tuples and lists (and int/float keys) compare as stored."""
    return json.loads(json.dumps(tree))


class _AbandonedReadFilter(logging.Filter):
    """Drops asyncio's 'Task exception was never retrieved' report of an Orbax array read that
    failed after another read had already failed the restore (to the debug log instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.getMessage().startswith("Task exception was never retrieved") and \
                "while reading array index" in str(error):
            logger.debug("a read abandoned by a failed restore: %r", error)
            return False
        return True


def _quiet_leftover_reads() -> None:
    """A failing Orbax restore leaves TensorStore reads in flight: when they finish, their callbacks
    find Orbax's event loop closed and print 'RuntimeError: Event loop is closed' tracebacks, and
    the reads that fail too are reported by asyncio with their tracebacks when collected. Those
    reports (and only those) go to the debug log instead of the terminal from now on; the failed
    restore itself is reported once, as `CheckpointRestoreError`."""
    if getattr(sys.excepthook, "drops_closed_loop_reports", False):
        return
    logging.getLogger("asyncio").addFilter(_AbandonedReadFilter())

    def closed_loop(error: BaseException | None) -> bool:
        return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"

    def excepthook(kind, error, traceback, original=sys.excepthook):
        if closed_loop(error):
            logger.debug("a read left over from a failed restore: %r", error)
        else:
            original(kind, error, traceback)

    def unraisablehook(unraisable, original=sys.unraisablehook):
        if closed_loop(unraisable.exc_value):
            logger.debug("a read left over from a failed restore: %r", unraisable.exc_value)
        else:
            original(unraisable)

    excepthook.drops_closed_loop_reports = True
    sys.excepthook, sys.unraisablehook = excepthook, unraisablehook


class TrainCheckpoints:
    """Saves and restores training state every `every` steps, keeping the last `keep`."""

    def __init__(self, directory: str, fingerprint: dict[str, Any], *, keep: int, async_save: bool = True):
        self.directory = directory
        self.fingerprint = _normalise(fingerprint)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save, create=True)
        self._manager = ocp.CheckpointManager(directory, options=options)

    @property
    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def check_same_run(self) -> None:
        """Raises `RunMismatchError` naming the differing fields if the newest checkpoint whose
        fingerprint reads is another run's (an unreadable one is left for `restore_latest`)."""
        for step in sorted(self._manager.all_steps(), reverse=True):
            try:
                stored = self._manager.restore(step, args=ocp.args.Composite(run=ocp.args.JsonRestore()))["run"]
            except Exception:  # noqa: BLE001 - a damaged checkpoint; restore_latest reports it
                continue
            self._check_fingerprint(step, stored)
            return

    def _check_fingerprint(self, step: int, stored: Any) -> None:
        ours, theirs = _flatten(self.fingerprint), _flatten(stored)
        differences = [
            f"{key}: checkpoint has {theirs.get(key)!r}, this config has {ours.get(key)!r}"
            for key in sorted(set(ours) | set(theirs))
            if ours.get(key) != theirs.get(key)
        ]
        if differences:
            raise RunMismatchError(
                f"{self.directory} holds checkpoints (latest step {step}) of a different run:\n  "
                + "\n  ".join(differences)
                + "\nNothing was changed. Use a new config.workdir, or restore the original config to resume."
            )

    def save(self, step: int, params: Any, opt_state: Any, data_iterator: grain.DatasetIterator) -> None:
        """Starts saving the state after `step` updates (returns once arrays are copied off device)."""
        args = ocp.args.Composite(
            params=ocp.args.StandardSave(params),
            opt_state=ocp.args.StandardSave(opt_state),
            data=grain.checkpoint.CheckpointSave(item=data_iterator),
            run=ocp.args.JsonSave(self.fingerprint),
        )
        self._manager.save(step, args=args, force=True)

    def restore(
        self, step: int, abstract_params: Any, abstract_opt_state: Any, data_iterator: grain.DatasetIterator
    ) -> tuple[Any, Any]:
        """Parameters and optimizer state of `step` (placed as the abstract targets say); sets
        `data_iterator` to where it was. `CheckpointRestoreError` if the checkpoint does not read."""
        args = ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params),
            opt_state=ocp.args.StandardRestore(abstract_opt_state),
            data=grain.checkpoint.CheckpointRestore(item=data_iterator),
        )
        _quiet_leftover_reads()  # before: the reports can come while the restore is still failing
        try:
            restored = self._manager.restore(step, args=args)
        except Exception as error:  # Orbax and TensorStore report damaged files with many exception types
            raise CheckpointRestoreError(
                f"the training checkpoint of step {step} in {self.directory} cannot be restored ({root_cause(error)})"
            ) from error
        return restored["params"], restored["opt_state"]

    def restore_latest(
        self, abstract_params: Any, abstract_opt_state: Any, data_iterator: grain.DatasetIterator, *, fallback: bool
    ) -> tuple[int, Any, Any]:
        """`(step, params, opt_state)` of the latest checkpoint. If it does not restore: with
        `fallback`, the newest one that does (the newer ones are set aside); without, an error
        that names the step and the way out."""
        steps = sorted(self._manager.all_steps(), reverse=True)
        unreadable = []
        for step in steps:
            try:
                params, opt_state = self.restore(step, abstract_params, abstract_opt_state, data_iterator)
            except CheckpointRestoreError as error:
                if not fallback:
                    raise CheckpointRestoreError(f"{error}; {self._way_out(step, steps)}") from error.__cause__
                logger.warning("%s; trying the checkpoint before it", error)
                unreadable.append(step)
                continue
            for bad in unreadable if jax.process_index() == 0 else ():
                self._step_dir(bad).rename(self._step_dir(bad).with_name(f"{bad}{UNREADABLE_SUFFIX}"))
                logger.warning("resuming from step %d; set the unreadable checkpoint %d aside as %s%s",
                               step, bad, bad, UNREADABLE_SUFFIX)
            self._manager.reload()
            return step, params, opt_state
        raise CheckpointRestoreError(
            f"none of the training checkpoints in {self.directory} (steps {', '.join(map(str, steps))}) can be "
            "restored; delete the directory to train from the start"
        )

    def _way_out(self, step: int, steps: list[int]) -> str:
        older = [s for s in steps if s < step]
        if older:
            return (f"set --config.train.restore_fallback=True to resume from the checkpoint before it (step "
                    f"{older[0]}), or delete {self._step_dir(step)}")
        return f"delete {self._step_dir(step)} to train from the start"

    def _step_dir(self, step: int) -> epath.Path:
        return epath.Path(self.directory) / str(step)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
