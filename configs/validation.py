"""Checks a run config against the ranges and choices that configs/base.py documents.

`validate_config(config, stages)` runs right after a launcher parses its config, before any
model, data or device is touched, and raises `ConfigError` with one line that names the dotted
field, the value given and what is allowed, e.g.

    sampling.top_p=0.0: must be in (0, 1]; 1.0 turns top-p off

Sampling fields follow vLLM's `SamplingParams` conventions: temperature >= 0 with 0 meaning
greedy; top-k >= 1, or 0 for off; top-p in (0, 1], 1.0 for off. A value that would silently
change the method is refused rather than reinterpreted: SSD data is *sampled*, so
`sampling.temperature` must be above the greedy threshold, and `n_samples=0` is an error, not
an empty run. Fields that configs/base.py does not define (typos such as
`sampling.temprature`) are refused with the nearest known name.

The stage layer calls it once before any stage runs (`ssd_jax.stages.prepare`), with the names
of the stages about to run (`ssd_jax.stages.STAGES`); only the fields those stages read are checked.
"""

from __future__ import annotations

import datetime
import difflib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from configs import base
from ssd_jax.checkpoints.builtin import BUILTIN_MODELS
from ssd_jax.checkpoints.tiny import NAME as TINY_MODEL
from ssd_jax.data.examples import OVERLONG_POLICIES
from ssd_jax.data.filtering import FILTER_RULES, TRUNCATED_POLICIES
from ssd_jax.data.prompts import SOURCES as PROMPT_SOURCES
from ssd_jax.errors import ConfigError
from ssd_jax.evaluation.prompts import PROMPT_STYLES
from ssd_jax.evaluation.grading import RUNNERS as GRADERS
from ssd_jax.evaluation.report import HEADLINE_RULES
from ssd_jax.models.config import ATTENTION_IMPLEMENTATIONS, REMAT_POLICIES
from ssd_jax.problems import BENCHMARKS
from ssd_jax.problems.livecodebench import RELEASE_FILES, WINDOWS
from ssd_jax.workdir import Workdir

# The sampler decodes greedily at or below this temperature (ssd_jax.sampling.filter; not imported
# here so that validation runs before JAX loads).
GREEDY_TEMPERATURE = 1e-5
DTYPES = ("float32", "bfloat16")
# Optional fields the evaluation reads when a config sets them (ssd_jax/stages/evaluate.py).
OPTIONAL_FIELDS = (
    "eval.benchmark.difficulties", "eval.benchmark.platforms", "eval.grading.per_sample_timeout_s",
    "eval.grading.max_processes", "eval.grading.max_file_mb", "eval.grading.max_open_files",
    "eval.grading.max_output_mb",
)
# Sections whose keys are the user's own (keyword arguments passed to the chat template).
OPEN_SECTIONS = ("prompts.chat_template_kwargs.", "eval.chat_template_kwargs.")
_PROMPT_SOURCES_WITH_PATH = ("rstar-coder", "jsonl", "livecodebench")


def validate_config(config: Mapping[str, Any], stages: Sequence[str]) -> None:
    """Raises `ConfigError` for the first field that `stages` (names of `ssd_jax.stages.STAGES`)
    read and that is out of range, and for any field configs/base.py does not define."""
    _check_known_fields(config)
    _check_common(config)
    if "sample" in stages:
        _check_prompts(config["prompts"])
        _check_sampling(config["sampling"])
    if "train" in stages:
        _check_mesh(config["mesh"])
        _check_data(config["data"], samples_written="sample" in stages)
        _check_train(config["train"])
    if "evaluate" in stages:
        _check_eval(config, trained="train" in stages)
    if "report" in stages:
        for name in ("include_base", "include_ssd"):
            _flag(f"eval.{name}", config["eval"][name])


# --- field checks -----------------------------------------------------------------------------


def _fail(field: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{field}={value!r}: {allowed}")


def _number(field: str, value: Any, kind: type, ok: Callable[[Any], bool], allowed: str) -> None:
    """`value` must be a `kind` (an int also passes for float; a bool never passes) within `ok`."""
    types = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, types) or not ok(value):
        raise _fail(field, value, allowed)


def _at_least(field: str, value: Any, low: int) -> None:
    _number(field, value, int, lambda v: v >= low, f"must be an integer >= {low}")


def _choice(field: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise _fail(field, value, f"choose one of {', '.join(map(repr, choices))}")


def _flag(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _fail(field, value, "must be True or False")


def _text(field: str, value: Any, *, empty_ok: bool = True) -> None:
    if not isinstance(value, str) or (not empty_ok and not value):
        raise _fail(field, value, "must be a non-empty string" if not empty_ok else "must be a string")


def _existing_path(field: str, path: str, what: str) -> None:
    if "://" not in path and not os.path.exists(path):
        raise _fail(field, path, f"no such file or directory; give {what}")


def _temperature(field: str, value: Any, *, greedy_ok: bool) -> None:
    _number(field, value, float, lambda v: v >= 0, "must be >= 0 (0 = greedy decoding)")
    if 0 < value <= GREEDY_TEMPERATURE:
        raise _fail(field, value, f"values in (0, {GREEDY_TEMPERATURE}] decode greedily; give 0 for greedy or a "
                                  f"temperature above {GREEDY_TEMPERATURE}")
    if value == 0 and not greedy_ok:
        raise _fail(field, value, "SSD samples its training data at a temperature > 0 (greedy decoding is not SSD); "
                                  "give e.g. 1.6 (paper, Qwen3-4B-Instruct)")


def _top_k(field: str, value: Any) -> None:
    _number(field, value, int, lambda v: v >= 0, "must be an integer >= 1, or 0 to turn top-k off")


def _top_p(field: str, value: Any) -> None:
    _number(field, value, float, lambda v: 0 < v <= 1, "must be in (0, 1]; 1.0 turns top-p off")


def _date(field: str, value: Any) -> None:
    if value == "":
        return
    try:
        datetime.date.fromisoformat(str(value))
    except ValueError:
        raise _fail(field, value, "give a date as YYYY-MM-DD, or \"\" for none") from None


def _check_common(config: Mapping[str, Any]) -> None:
    _text("workdir", config["workdir"], empty_ok=False)
    _model_ref("model", config["model"])
    _number("seed", config["seed"], int, lambda v: v >= 0, "must be an integer >= 0")
    _choice("dtype", config["dtype"], DTYPES)
    _choice("param_dtype", config["param_dtype"], DTYPES)
    _text("compilation_cache_dir", config["compilation_cache_dir"])
    _check_distributed(config["distributed"])


def _check_distributed(distributed: Mapping[str, Any]) -> None:
    _text("distributed.cluster_detection", distributed["cluster_detection"], empty_ok=False)
    _text("distributed.coordinator_address", distributed["coordinator_address"])
    address = distributed["coordinator_address"]
    if address and not address.rpartition(":")[2].isdigit():
        raise _fail("distributed.coordinator_address", address, "give host:port of process 0, or \"\" to detect it")
    _at_least("distributed.num_processes", distributed["num_processes"], 0)
    _number("distributed.process_id", distributed["process_id"], int, lambda v: v >= -1,
            "must be an integer >= 0, or -1 to read JAX_PROCESS_ID")
    _at_least("distributed.initialization_timeout_s", distributed["initialization_timeout_s"], 1)


def _model_ref(field: str, ref: Any) -> None:
    _text(field, ref, empty_ok=False)
    if ref in BUILTIN_MODELS or ref == TINY_MODEL or "://" in ref or os.path.exists(ref):
        return
    names = ", ".join(sorted([*BUILTIN_MODELS, TINY_MODEL]))
    if os.sep in ref or ref.endswith(".gguf"):
        raise _fail(field, ref, f"no such file or directory; give an HF directory, a .gguf file, an ssd-jax model "
                                f"directory, or a built-in name ({names})")
    raise _fail(field, ref, f"not a path and not a built-in model; built-in names: {names}")


def _check_mesh(mesh: Mapping[str, Any]) -> None:
    for axis in ("data", "fsdp", "expert", "model"):
        _number(f"mesh.{axis}", mesh[axis], int, lambda v: v >= 1 or v == -1,
                "must be an integer >= 1, or -1 to take the devices left over")
    if [mesh[axis] for axis in ("data", "fsdp", "expert", "model")].count(-1) > 1:
        raise ConfigError(f"mesh={dict(mesh)}: at most one axis may be -1 (the devices left over)")


def _check_prompts(prompts: Mapping[str, Any]) -> None:
    _choice("prompts.source", prompts["source"], PROMPT_SOURCES)
    path, source = prompts["path"], prompts["source"]
    _text("prompts.path", path)
    if source == "offline" and path:
        raise _fail("prompts.path", path, "the offline prompts ship with the package; give \"\"")
    if source in _PROMPT_SOURCES_WITH_PATH and not path:
        raise _fail("prompts.path", path, f"prompts.source={source!r} reads a local copy; give its file or directory")
    if path:
        _existing_path("prompts.path", path, f"a local copy of the {source} prompts")
    _at_least("prompts.limit", prompts["limit"], 0)
    _flag("prompts.require_passed", prompts["require_passed"])
    _text("prompts.system_message", prompts["system_message"])


def _check_paged_cache(section: str, fields: Mapping[str, Any]) -> None:
    _at_least(f"{section}.page_size", fields["page_size"], 1)
    _at_least(f"{section}.kv_cache_pages", fields["kv_cache_pages"], 0)
    _number(f"{section}.kv_cache_gb", fields["kv_cache_gb"], float, lambda v: v >= 0,
            f"must be >= 0 (GiB of KV cache per device; 0 = see {section}.kv_cache_pages)")
    _at_least(f"{section}.prefill_chunk", fields["prefill_chunk"], 1)


def _check_sampling(sampling: Mapping[str, Any]) -> None:
    _temperature("sampling.temperature", sampling["temperature"], greedy_ok=False)
    _top_k("sampling.top_k", sampling["top_k"])
    _top_p("sampling.top_p", sampling["top_p"])
    _number("sampling.n_samples", sampling["n_samples"], int, lambda v: v >= 1,
            "must be an integer >= 1 (samples per prompt; the paper uses 1)")
    _at_least("sampling.max_new_tokens", sampling["max_new_tokens"], 1)
    _number("sampling.max_total_tokens", sampling["max_total_tokens"], int, lambda v: v == 0 or v >= 2,
            "must be 0 (the model's context) or an integer >= 2 (prompt + response tokens)")
    _at_least("sampling.batch_size", sampling["batch_size"], 1)
    _at_least("sampling.model_parallel", sampling["model_parallel"], 1)
    _at_least("sampling.expert_parallel", sampling["expert_parallel"], 1)
    _check_paged_cache("sampling", sampling)
    stops = sampling["stop_strings"]
    if not isinstance(stops, (tuple, list)) or not all(isinstance(s, str) and s for s in stops):
        raise _fail("sampling.stop_strings", stops, "must be a tuple of non-empty strings")
    ids = sampling["stop_token_ids"]
    if not isinstance(ids, (tuple, list)) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                                     for i in ids):
        raise _fail("sampling.stop_token_ids", ids, "must be a tuple of token ids (integers >= 0)")


def _check_data(data: Mapping[str, Any], *, samples_written: bool) -> None:
    if data["samples_dir"] and not samples_written:
        _existing_path("data.samples_dir", data["samples_dir"], "the directory sampling wrote its shards to, "
                                                               "or \"\" for <workdir>/samples")
    _choice("data.filter", data["filter"], FILTER_RULES)
    _number("data.shortest_percent", data["shortest_percent"], float, lambda v: 0 <= v < 100,
            "give a percentage in [0, 100)")
    _at_least("data.max_length", data["max_length"], 2)
    _choice("data.overlong", data["overlong"], OVERLONG_POLICIES)
    _flag("data.pack", data["pack"])
    _at_least("data.packed_rows", data["packed_rows"], 0)
    _choice("data.truncated", data["truncated"], TRUNCATED_POLICIES)
    _number("data.epochs", data["epochs"], int, lambda v: v >= 0,
            "must be an integer >= 0 (0 repeats the data until train.steps)")
    _at_least("data.read_threads", data["read_threads"], 1)


def _check_train(train: Mapping[str, Any]) -> None:
    _at_least("train.steps", train["steps"], 1)
    _at_least("train.global_batch", train["global_batch"], 1)
    micro = train["micro_batch"]
    _number("train.micro_batch", micro, int, lambda v: v >= 0, "must be an integer >= 0 (0 = train.global_batch)")
    if micro and train["global_batch"] % micro:
        raise _fail("train.micro_batch", micro, f"must divide train.global_batch={train['global_batch']} "
                                                "(rows per step = micro_batch × accumulation steps)")
    _number("train.peak_learning_rate", train["peak_learning_rate"], float, lambda v: v > 0, "must be > 0")
    _number("train.final_learning_rate", train["final_learning_rate"], float,
            lambda v: 0 <= v <= train["peak_learning_rate"], "must be in [0, train.peak_learning_rate]")
    _number("train.warmup_steps", train["warmup_steps"], int, lambda v: 0 <= v <= train["steps"],
            f"must be in [0, train.steps={train['steps']}]")
    for name in ("b1", "b2"):
        _number(f"train.{name}", train[name], float, lambda v: 0 <= v < 1, "must be in [0, 1)")
    _number("train.weight_decay", train["weight_decay"], float, lambda v: v >= 0, "must be >= 0")
    _number("train.grad_clip", train["grad_clip"], float, lambda v: v >= 0, "must be >= 0 (0 = no clipping)")
    _choice("train.remat", train["remat"], REMAT_POLICIES)
    _choice("train.attention", train["attention"], ATTENTION_IMPLEMENTATIONS)
    for name in ("async_checkpointing", "restore_fallback", "checkpoint_models"):
        _flag(f"train.{name}", train[name])
    for name in ("checkpoint_every", "keep_checkpoints", "log_every"):
        _at_least(f"train.{name}", train[name], 1)


def _check_eval(config: Mapping[str, Any], *, trained: bool) -> None:
    section = config["eval"]
    for name in ("include_base", "include_ssd", "allow_unsandboxed"):
        _flag(f"eval.{name}", section[name])
    models = section["models"]
    if not isinstance(models, (tuple, list)) or not all(isinstance(m, str) and m for m in models):
        raise _fail("eval.models", models, "must be a tuple of model refs, `ref` or `name=ref`")
    if not (section["include_base"] or section["include_ssd"] or models):
        raise ConfigError("eval: nothing to evaluate; set eval.include_base, eval.include_ssd or eval.models")
    final = Workdir(config["workdir"]).final_model
    if section["include_ssd"] and not trained and not final.is_dir():
        raise ConfigError(f"eval.include_ssd=True: {final} does not exist; train first (launch/train.py) "
                          "or set --config.eval.include_ssd=False")
    _check_benchmark(section["benchmark"])
    temperatures = section["temperatures"]
    if not isinstance(temperatures, (tuple, list)) or not temperatures:
        raise _fail("eval.temperatures", temperatures, "give a non-empty tuple of temperatures, e.g. (0.6, 0.8, 1.0)")
    for index, temperature in enumerate(temperatures):
        _temperature(f"eval.temperatures[{index}]", temperature, greedy_ok=True)
    _top_k("eval.top_k", section["top_k"])
    _top_p("eval.top_p", section["top_p"])
    _number("eval.base_top_k", section["base_top_k"], int, lambda v: v >= -1,
            "must be -1 (same as eval.top_k), 0 (off) or an integer >= 1")
    _number("eval.base_top_p", section["base_top_p"], float, lambda v: v == -1 or 0 < v <= 1,
            "must be -1 (same as eval.top_p) or in (0, 1]; 1.0 turns top-p off")
    _number("eval.n_samples", section["n_samples"], int, lambda v: v >= 1,
            "must be an integer >= 1 (samples per problem; pass@k needs at least k)")
    _at_least("eval.max_new_tokens", section["max_new_tokens"], 1)
    _number("eval.max_total_tokens", section["max_total_tokens"], int, lambda v: v == 0 or v >= 2,
            "must be 0 (the model's context) or an integer >= 2 (prompt + response tokens)")
    _choice("eval.prompt_style", section["prompt_style"], PROMPT_STYLES)
    _choice("eval.grader", section["grader"], GRADERS)
    _choice("eval.checkpoints", section["checkpoints"], ("final", "all"))
    _choice("eval.headline", section["headline"], HEADLINE_RULES)
    if section["headline"] == "fixed":
        for name in ("headline_temperature", "base_headline_temperature"):
            if section[name] not in temperatures:
                raise _fail(f"eval.{name}", section[name], f"with eval.headline='fixed', one of eval.temperatures "
                                                           f"{tuple(temperatures)}")
    adaptive = section["adaptive"]
    if not isinstance(adaptive, (tuple, list)) or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) and a > 0 for a in adaptive):
        raise _fail("eval.adaptive", adaptive, "must be a tuple of adaptive-temperature strengths > 0 (() = none)")
    _at_least("eval.batch_size", section["batch_size"], 1)
    _at_least("eval.model_parallel", section["model_parallel"], 0)
    _at_least("eval.expert_parallel", section["expert_parallel"], 0)
    _at_least("eval.chunk_size", section["chunk_size"], 1)
    _check_paged_cache("eval", section)
    _flag("eval.rescore", section["rescore"])
    if section["system_message"] is not None:
        _text("eval.system_message", section["system_message"])
    _at_least("eval.workers", section["workers"], 0)
    grading = section["grading"]
    _number("eval.grading.per_test_timeout_s", grading["per_test_timeout_s"], float, lambda v: v > 0, "must be > 0")
    _at_least("eval.grading.memory_mb", grading["memory_mb"], 1)


def _check_benchmark(benchmark: Mapping[str, Any]) -> None:
    _choice("eval.benchmark.name", benchmark["name"], BENCHMARKS)
    path = benchmark["path"]
    _text("eval.benchmark.path", path)
    if benchmark["name"] == "livecodebench":
        if not path:
            raise _fail("eval.benchmark.path", path, "LiveCodeBench reads a local copy; give its code_generation_lite "
                                                     "directory (test*.jsonl)")
        releases = [f"release_v{n}" for n in range(1, len(RELEASE_FILES) + 1)]
        _choice("eval.benchmark.release_version", benchmark["release_version"], releases)
        _choice("eval.benchmark.window", benchmark["window"], ("", *WINDOWS))
        _date("eval.benchmark.start_date", benchmark["start_date"])
        _date("eval.benchmark.end_date", benchmark["end_date"])
    if path:
        _existing_path("eval.benchmark.path", path, f"a local copy of {benchmark['name']}")
    _at_least("eval.benchmark.limit", benchmark["limit"], 0)


# --- unknown fields -----------------------------------------------------------------------------


def _leaves(section: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted name → value for every field; sections (ConfigDicts, dicts) are walked into."""
    fields = {}
    for name, value in section.items():
        if isinstance(value, Mapping) or hasattr(value, "to_dict"):
            fields[f"{prefix}{name}."] = value
            fields.update(_leaves(value, f"{prefix}{name}."))
        else:
            fields[f"{prefix}{name}"] = value
    return fields


def _check_known_fields(config: Mapping[str, Any]) -> None:
    known = {*_leaves(base.get_config()), *OPTIONAL_FIELDS}
    for name in _leaves(config):
        if name not in known and not name.endswith(".") and not name.startswith(OPEN_SECTIONS):
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{name}: no such config field{hint} (configs/base.py lists every field)")
