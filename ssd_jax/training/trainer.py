"""The fine-tuning loop: load the model, prepare the data, resume if a checkpoint exists, train,
checkpoint, and save the final model (`<workdir>/train/final`, an ssd-jax model directory).

Restarting with the same settings continues from the latest checkpoint with the same data
order; a finished run is left as it is. SIGTERM (to any host of a pod) stops every host after
the same step with a checkpoint. A work directory holding another run's checkpoints is
refused untouched. `ssd_jax.stages.train` runs this from a config.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any

import jax
from flax import nnx

from ssd_jax.checkpoints.load import LoadedModel, load_model
from ssd_jax.checkpoints.orbax import is_model_dir, save_model
from ssd_jax.data.examples import ExampleTokenizer
from ssd_jax.data.pipeline import prepare_data, rows_per_micro_batch, training_batches
from ssd_jax.errors import ConfigError
from ssd_jax.parallel import batch_shards, make_mesh
from ssd_jax.parallel.distributed import barrier
from ssd_jax.training import state
from ssd_jax.training.checkpointing import TrainCheckpoints
from ssd_jax.training.metrics import MetricsLog
from ssd_jax.training.optimizer import (
    learning_rate_schedule,
    make_optimizer,
    weight_decay_mask,
)
from ssd_jax.training.preemption import PreemptionWatch
from ssd_jax.training.settings import TrainSettings
from ssd_jax.training.step import make_train_step

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """How the run ended: `finished` (final model written), `preempted` (checkpoint written,
    restart to continue) or `already_finished` (nothing to do); the step reached."""

    status: str
    step: int
    final_model: str | None
    metrics_path: str


def train(settings: TrainSettings) -> TrainResult:
    paths = settings.paths
    mesh = make_mesh(**settings.mesh)
    batch_devices = batch_shards(mesh)
    if settings.micro_batch % batch_devices:
        raise ConfigError(
            f"config.train.micro_batch={settings.micro_batch} rows must split evenly over the mesh's "
            f"data × fsdp × expert = {batch_devices} devices"
        )
    loaded = load_model(
        settings.model, dtype=settings.dtype, param_dtype=settings.param_dtype, mesh=mesh, remat=settings.remat,
        attention=settings.attention,
    )
    examples = ExampleTokenizer(loaded.tokenizer, loaded.chat_template, settings.data.chat_template_kwargs)
    prepared = prepare_data(settings.data, examples)
    fingerprint = {
        **settings.fingerprint(),
        "architecture": loaded.config.to_hf(),
        "sample_records": prepared.counts["records"],
    }
    checkpoints = TrainCheckpoints(
        str(paths.checkpoints), fingerprint, keep=settings.keep_checkpoints, async_save=settings.async_checkpointing
    )
    try:
        checkpoints.check_same_run()
        if is_model_dir(str(paths.final_model)):
            logger.info("training already finished: the final model is %s", paths.final_model)
            return TrainResult("already_finished", checkpoints.latest_step or 0, str(paths.final_model),
                               str(paths.metrics))
        return _run(settings, loaded, examples, prepared, checkpoints)
    finally:
        checkpoints.close()


def _run(settings: TrainSettings, loaded: LoadedModel, examples, prepared, checkpoints: TrainCheckpoints) -> TrainResult:
    mesh, paths = loaded.mesh, settings.paths
    graphdef, params = state.split_params(loaded.model)
    optimizer = make_optimizer(settings.optimizer, weight_decay_mask(loaded.model))
    param_shardings = state.param_shardings(loaded.model, mesh)
    opt_shardings = state.opt_state_shardings(optimizer, params, param_shardings, mesh)
    rows = rows_per_micro_batch(
        prepared, settings.data, seed=settings.seed, examples_per_step=settings.global_batch,
        accumulation=settings.accumulation, steps=settings.optimizer.steps,
        row_multiple=math.lcm(jax.process_count(), mesh.shape["data"] * mesh.shape["fsdp"]),
    )
    logger.info(
        "%d examples per step in %d × %d rows of %d tokens: %.2f passes over the %d examples in %d steps",
        settings.global_batch, settings.accumulation, rows, settings.data.max_length,
        settings.optimizer.steps * settings.global_batch / len(prepared.indices), len(prepared.indices),
        settings.optimizer.steps,
    )
    data_iterator = iter(training_batches(
        prepared, settings.data, examples, seed=settings.seed, examples_per_step=settings.global_batch,
        accumulation=settings.accumulation, rows=rows,
        process_index=jax.process_index(), process_count=jax.process_count(),
    ))
    step = checkpoints.latest_step or 0
    if step:
        abstract_opt_state = _abstract(jax.eval_shape(optimizer.init, params), opt_shardings)
        step, params, opt_state = checkpoints.restore_latest(
            _abstract(params, param_shardings), abstract_opt_state, data_iterator, fallback=settings.restore_fallback
        )
        logger.info("resuming from the checkpoint of step %d in %s", step, checkpoints.directory)
    else:
        opt_state = state.init_opt_state(optimizer, params, opt_shardings)
    shape = (settings.accumulation, rows, settings.data.max_length)
    batch_shardings = state.batch_shardings(
        {name: shape for name in ("inputs", "targets", "weights", "segment_ids", "positions")}, mesh
    )
    train_step = make_train_step(graphdef, optimizer, param_shardings, opt_shardings, batch_shardings)
    schedule = learning_rate_schedule(settings.optimizer)
    total_steps = settings.optimizer.steps
    log = MetricsLog(paths.metrics, step, total_steps=total_steps, enabled=jax.process_index() == 0,
                     tensorboard_dir=paths.tensorboard)
    status, saved_step, compiled_step = "finished", step, None
    try:
        with PreemptionWatch() as preemption:
            last_time = time.perf_counter()
            while step < total_steps:
                if preemption.should_stop(step):
                    status = "preempted"
                    break
                try:
                    batch = next(data_iterator)
                except StopIteration:
                    logger.warning("the data ran out (config.data.epochs) at step %d of %d", step, total_steps)
                    break
                batch = state.put_batch(batch, batch_shardings)
                if compiled_step is None:  # every process compiles, then all start the step's collectives together
                    compiled_step = train_step.lower(params, opt_state, batch).compile()
                    barrier("ssd_jax train step compiled")
                params, opt_state, metrics = compiled_step(params, opt_state, batch)
                values = jax.device_get(metrics)  # waits for the step
                now = time.perf_counter()
                metrics = _metrics_line(step + 1, values, float(schedule(step)), now - last_time,
                                        moe=bool(loaded.config.num_experts))
                last_time, step = now, step + 1
                log.write(metrics)
                if step % settings.log_every == 0:
                    logger.info("step %d: %s", step, metrics)
                if step % settings.checkpoint_every == 0 or step == total_steps:
                    checkpoints.save(step, params, opt_state, data_iterator)
                    log.flush()
                    saved_step = step
                    if settings.checkpoint_models and step < total_steps:  # the last one is final/
                        _save(nnx.merge(graphdef, params), loaded, paths.checkpoint_model(step))
        if saved_step != step:
            checkpoints.save(step, params, opt_state, data_iterator)
        checkpoints.wait()
    finally:
        log.close()
    if status == "preempted":
        logger.warning("stopped by SIGTERM after step %d; the checkpoint is saved, rerun to resume", step)
        return TrainResult(status, step, None, str(paths.metrics))
    final = _save(nnx.merge(graphdef, params), loaded, paths.final_model)
    return TrainResult(status, step, final, str(paths.metrics))


def _save(model: nnx.Module, loaded: LoadedModel, directory) -> str:
    """Writes `model` with the base model's tokenizer and chat template as an ssd-jax model directory."""
    directory = str(directory)
    save_model(model, directory, tokenizer=loaded.tokenizer, chat_template=loaded.chat_template)
    logger.info("model saved to %s", directory)
    return directory


def _metrics_line(step: int, values: dict[str, Any], learning_rate: float, seconds: float,
                  moe: bool = False) -> dict[str, float]:
    """One metrics.jsonl line: the step's loss, learning rate, gradient norm (before clipping),
    masked (trained) and real (non-padding) tokens, throughput and wall time since the last step;
    for a mixture of experts also the router's load-balancing loss (unweighted)."""
    values = {name: float(value) for name, value in values.items()}
    line = {
        "step": step, "loss": values["loss"], "learning_rate": learning_rate, "grad_norm": values["grad_norm"],
        "masked_tokens": values["masked_tokens"], "tokens": values["tokens"],
        "tokens_per_s": values["tokens"] / seconds, "step_time_s": seconds,
    }
    if moe:
        line["router_aux_loss"] = values["router_aux_loss"]
    return line


def _abstract(tree: Any, shardings: Any) -> Any:
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)
