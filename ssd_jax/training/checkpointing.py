"""Training checkpoints: parameters, optimizer state, data-iterator state and the run's fingerprint.

An Orbax `CheckpointManager` under `<workdir>/train/checkpoints/<step>/` with four items:
`params` and `opt_state` (sharded arrays, written collectively, asynchronously), `data` (each
process's Grain iterator state, Grain's own Orbax handler) and `run` (the fingerprint: model,
architecture, data and optimizer settings). A checkpoint is only ever resumed by a run with
the same fingerprint; anything else is refused before a byte is written.
"""

from __future__ import annotations

import json
from typing import Any

import grain
import orbax.checkpoint as ocp

from ssd_jax.errors import SettingsChangedError


class RunMismatchError(SettingsChangedError):
    """The work directory holds a checkpoint of a different model or configuration."""


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


def _normalise(tree: Any) -> Any:
    """JSON round trip, so tuples and lists (and int/float keys) compare as stored."""
    return json.loads(json.dumps(tree))


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
        """Raises `RunMismatchError` naming the differing fields if the latest checkpoint is another run's."""
        step = self.latest_step
        if step is None:
            return
        stored = self._manager.restore(step, args=ocp.args.Composite(run=ocp.args.JsonRestore()))["run"]
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
        `data_iterator` to where it was."""
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                params=ocp.args.StandardRestore(abstract_params),
                opt_state=ocp.args.StandardRestore(abstract_opt_state),
                data=grain.checkpoint.CheckpointRestore(item=data_iterator),
            ),
        )
        return restored["params"], restored["opt_state"]

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
