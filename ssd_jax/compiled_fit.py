"""Does a config fit its chips? Compile its programs ahead of time for a TPU topology and read
the compiled memory per chip (no accelerator and no weights needed: abstract arrays only).

The programs are the ones a run executes, built by the same code: the training step
(`training.step.make_train_step` over the config's mesh, micro-batch, row length, remat and
attention), the paged sampler's prefill chunk and decode step (`sampling.aot`) for stage 1
(`sampling.*`) and for evaluation (`eval.*`), each on one host's chips as `parallel.sampler_mesh`
arranges them for its stage, with the section's slots, page pool, prefill chunk and budget.
Each compiles with `jit(...).lower(abstract args with NamedShardings).compile()`; its
`memory_analysis()` gives the bytes per chip, its `cost_analysis()` the FLOPs per chip.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ssd_jax.errors import ConfigError
from ssd_jax.models.config import ModelConfig
from ssd_jax.models.transformer import Transformer
from ssd_jax.parallel import make_mesh, sampler_mesh
from ssd_jax.sampling.aot import sampler_compile_targets
from ssd_jax.sampling.pages import pages_in_gib
from ssd_jax.training import state
from ssd_jax.training.optimizer import OptimizerSettings, make_optimizer, weight_decay_mask
from ssd_jax.training.step import make_train_step

ARCHITECTURES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "architectures")
GiB = 1024**3


@dataclasses.dataclass(frozen=True)
class Chip:
    """A TPU generation's HBM per chip and dense bf16 peak (Google Cloud TPU documentation)."""

    name: str
    hbm_bytes: int
    peak_flops: float


CHIPS = {  # by jax device_kind
    "TPU v5": Chip("v5p", 95 * GiB, 459e12),
    "TPU v5p": Chip("v5p", 95 * GiB, 459e12),
    "TPU v5 lite": Chip("v5e", 16 * GiB, 197e12),
    "TPU v6 lite": Chip("v6e", 32 * GiB, 918e12),
}


@dataclasses.dataclass(frozen=True)
class ProgramFit:
    """One compiled program's memory per chip against the chip's HBM, and its FLOPs per chip."""

    program: str
    chip: Chip
    chips: int
    argument_bytes: int
    output_bytes: int
    alias_bytes: int
    temp_bytes: int
    flops: float

    @property
    def total_bytes(self) -> int:
        """Live at the peak: arguments + outputs + temporaries, less outputs aliased to donated arguments."""
        return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.chip.hbm_bytes

    @property
    def seconds_at_peak(self) -> float:
        return self.flops / self.chip.peak_flops


def topology_devices(name: str) -> list:
    """The devices of TPU topology `name` (e.g. `v5p:2x2x4`, a v5p-32 slice), compiled for on this host."""
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")  # compiling only: no claim on a chip
    from jax.experimental import topologies

    try:
        return list(topologies.get_topology_desc(platform="tpu", topology_name=name).devices)
    except Exception as error:  # libtpu raises its own kinds
        raise ConfigError(f"--topology={name!r}: not a TPU topology libtpu knows ({error}); "
                          "e.g. v5p:2x2x4 (v5p-32), v5p:2x4x4 (v5p-64), v5e:2x2") from None


def architecture(model_ref: str, **overrides: Any) -> ModelConfig:
    """The model's architecture from its `config.json`: `model_ref`'s own if it is a local HF
    directory, else `configs/architectures/<basename>.json` (the paper's models ship there)."""
    candidates = [os.path.join(model_ref, "config.json"),
                  os.path.join(ARCHITECTURES_DIR, os.path.basename(model_ref.rstrip("/")) + ".json")]
    for path in candidates:
        if os.path.isfile(path):
            with open(path) as f:
                return ModelConfig.from_hf(json.load(f), **overrides)
    raise ConfigError(f"config.model={model_ref!r}: no config.json found at {' or '.join(candidates)}; "
                      f"add the model's published config.json as {candidates[1]}")


def _abstract(tree: Any, shardings: Any) -> Any:
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)


def training_target(config: Mapping[str, Any], model_config: ModelConfig, mesh) -> tuple[Any, tuple]:
    """The jitted training step and its abstract (params, optimizer state, batch)."""
    train, length = config["train"], int(config["data"]["max_length"])
    global_batch = int(train["global_batch"])
    micro_batch = int(train["micro_batch"]) or global_batch
    model = nnx.eval_shape(lambda: Transformer(model_config, rngs=nnx.Rngs(0)))
    graphdef, params = state.split_params(model)
    optimizer = make_optimizer(OptimizerSettings.from_config(config), weight_decay_mask(model))
    param_shardings = state.param_shardings(model, mesh)
    opt_shardings = state.opt_state_shardings(optimizer, params, param_shardings, mesh)
    shape = (global_batch // micro_batch, micro_batch, length)
    names = {"inputs": "int32", "targets": "int32", "weights": "float32", "segment_ids": "int32", "positions": "int32"}
    batch_shardings = state.batch_shardings({name: shape for name in names}, mesh)
    batch = {name: jax.ShapeDtypeStruct(shape, jnp.dtype(dt), sharding=batch_shardings[name]) for name, dt in names.items()}
    step = make_train_step(graphdef, optimizer, param_shardings, opt_shardings, batch_shardings)
    abstract_opt = _abstract(jax.eval_shape(optimizer.init, params), opt_shardings)
    return step, (_abstract(params, param_shardings), abstract_opt, batch)


def training_model_flops(config: Mapping[str, Any], model_config: ModelConfig) -> float:
    """FLOPs of one optimizer step by the usual model count (PaLM's MFU formula): 6 · matmul
    parameters · tokens for the projections, plus 6 · layers · heads · head_dim · T² per row for
    causal attention (forward + backward; rematerialisation's recomputation not counted)."""
    c = model_config
    per_layer = c.hidden_size * c.head_dim * (2 * c.num_heads + 2 * c.num_kv_heads) + 3 * c.hidden_size * c.intermediate_size
    matmul_params = c.num_layers * per_layer + c.hidden_size * c.vocab_size
    rows, length = int(config["train"]["global_batch"]), int(config["data"]["max_length"])
    attention = 6 * c.num_layers * c.num_heads * c.head_dim * length * length
    return rows * (6 * matmul_params * length + attention)


def compile_targets(config: Mapping[str, Any], devices: Sequence, *, max_prompt_tokens: int,
                    max_total_tokens: int | None = None) -> dict[str, tuple[Any, tuple]]:
    """Every program the config runs, by name, as (jitted, abstract args) for `devices`.

    Sampling (stage 1) and evaluation both sample on one host's chips (`model_parallel` per
    replica, the rest split the slots), as their stages do, for prompts of `max_prompt_tokens`
    and as many new tokens as the section's budget gives them: `max_new_tokens`, capped by
    prompt + response reaching `max_total_tokens` (the section's, or this argument) or the
    model's context, as the `Sampler` caps them.
    """
    train = config["train"]
    dtype, param_dtype = str(config["dtype"]), str(config["param_dtype"])
    model_config = architecture(str(config["model"]), dtype=dtype, param_dtype=param_dtype,
                                remat=str(train["remat"]), attention=str(train["attention"]))
    mesh = make_mesh(**{axis: int(config["mesh"][axis]) for axis in ("data", "fsdp", "expert", "model")},
                     devices=devices)
    targets = {"train_step": training_target(config, model_config, mesh)}
    sampling, evaluation = config["sampling"], config["eval"]
    host = [d for d in devices if d.process_index == devices[0].process_index]  # sampling never spans hosts
    for name, section in (("sample", sampling), ("eval", evaluation)):
        parallel = {axis: int(section[axis]) or int(sampling[axis])  # eval: 0 = sampling's
                    for axis in ("model_parallel", "expert_parallel")}
        context = min(model_config.max_position_embeddings,
                      max_total_tokens or int(section["max_total_tokens"]) or sys.maxsize)
        if max_prompt_tokens >= context:
            raise ConfigError(f"--max_prompt_tokens={max_prompt_tokens} leaves no room to generate in {name}'s "
                              f"{context}-token budget")
        engine = _engine_settings(section)
        programs = sampler_compile_targets(
            model_config, mesh=sampler_mesh(host, section="sampling" if name == "sample" else "eval", **parallel),
            dtype=dtype, batch_size=int(section["batch_size"]), max_prompt_tokens=max_prompt_tokens,
            max_new_tokens=min(int(section["max_new_tokens"]), context - max_prompt_tokens),
            page_size=engine["page_size"], prefill_chunk=engine["prefill_chunk"],
            kv_cache_pages=engine["kv_cache_pages"] or pages_in_gib(
                model_config.replace(dtype=dtype), parallel["model_parallel"], engine["page_size"],
                engine["kv_cache_gb"]))
        targets.update({f"{name}_{program}": target for program, target in programs.items()})
    return targets


def _engine_settings(section: Mapping[str, Any]) -> dict[str, Any]:
    """The paged engine's settings a stage builds its `Sampler` with (`sampling.*` or `eval.*`)."""
    return {"page_size": int(section["page_size"]), "prefill_chunk": int(section["prefill_chunk"]),
            "kv_cache_pages": int(section["kv_cache_pages"]), "kv_cache_gb": float(section["kv_cache_gb"])}


def compile_and_measure(program: str, fn: Any, args: tuple) -> ProgramFit:
    """Compiles `fn` for `args`' devices and reads its memory and cost analyses."""
    devices = {d for leaf in jax.tree.leaves(args) if hasattr(leaf, "sharding") for d in leaf.sharding.device_set}
    kind = next(iter(devices)).device_kind
    if kind not in CHIPS:
        raise ConfigError(f"no HBM capacity known for device kind {kind!r}; known: {sorted(CHIPS)}")
    try:
        compiled = fn.lower(*args).compile()
    except jax.errors.JaxRuntimeError as error:
        # The TPU compiler itself refuses a program whose temporaries exceed HBM, giving their size.
        needed = re.search(r"HLO temporaries \(([0-9.]+)([KMGT])\)", str(error))
        if "RESOURCE_EXHAUSTED" not in str(error) or not needed:
            raise
        temp_bytes = int(float(needed.group(1)) * 1024 ** "KMGT".index(needed.group(2)) * 1024)
        return ProgramFit(program, CHIPS[kind], len(devices), _argument_bytes_per_chip(args), 0, 0, temp_bytes, 0.0)
    memory, cost = compiled.memory_analysis(), compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return ProgramFit(program, CHIPS[kind], len(devices), memory.argument_size_in_bytes, memory.output_size_in_bytes,
                      memory.alias_size_in_bytes, memory.temp_size_in_bytes, float((cost or {}).get("flops", 0.0)))


def _argument_bytes_per_chip(args: tuple) -> int:
    """The largest per-chip share of the arguments (from their shardings), for programs the compiler refused."""
    per_device: dict = {}
    for leaf in jax.tree.leaves(args):
        if hasattr(leaf, "sharding"):
            size = math.prod(leaf.sharding.shard_shape(leaf.shape)) * jnp.dtype(leaf.dtype).itemsize
            for device in leaf.sharding.device_set:
                per_device[device] = per_device.get(device, 0) + size
    return max(per_device.values())


def format_table(fits: Sequence[ProgramFit]) -> str:
    """One row per program: HBM per chip (GiB) by kind, the chip's capacity, FLOPs and time at peak."""
    header = (f"{'program':<14} {'chip':>4} {'chips':>5} {'args':>8} {'outputs':>8} {'temps':>8} {'total':>8} "
              f"{'capacity':>8} {'fits':>4} {'TFLOP/chip':>10} {'s at peak':>9}")
    lines = [header, "-" * len(header)]
    for f in fits:
        gib = lambda b: f"{b / GiB:8.2f}"
        lines.append(f"{f.program:<14} {f.chip.name:>4} {f.chips:>5} {gib(f.argument_bytes)} {gib(f.output_bytes)} "
                     f"{gib(f.temp_bytes)} {gib(f.total_bytes)} {gib(f.chip.hbm_bytes)} {'yes' if f.fits else 'NO':>4} "
                     f"{f.flops / 1e12:10.4g} {f.seconds_at_peak:9.3g}")
    lines.append("HBM figures are GiB per chip (outputs aliased to donated arguments counted once; a program the "
                 "TPU compiler refused shows the temporaries it reported and no FLOPs); FLOPs per chip from XLA's cost "
                 "analysis; time at the chip's dense bf16 peak.")
    return "\n".join(lines)
