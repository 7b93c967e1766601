"""Prove a config fits its TPU slice: compile its programs ahead of time and print their memory.

    python launch/compile.py --config=configs/paper/qwen3_4b_instruct.py --topology=v5p:2x2x4

Compiles, for the named topology and without weights, the training step, the paged sampler's
prefill chunk and decode step for stage 1 and for the evaluator, each at its section's slots,
page pool and token budget; prints HBM per chip (arguments, outputs, temporaries,
total) against the chip's capacity, FLOPs per chip and the step time at the chip's peak. Exits
non-zero, naming the programs, when one does not fit. Runs on a CPU host with libtpu installed.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from ssd_jax import compiled_fit
from ssd_jax.errors import SsdJaxError
from ssd_jax.logs import quiet_library_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "the run's config file", lock_config=True)
_TOPOLOGY = flags.DEFINE_string("topology", None, "TPU topology, e.g. v5p:2x2x4 (v5p-32) or v5p:2x4x4 (v5p-64)")
_PROGRAMS = flags.DEFINE_list("programs", [], "compile only these, in this order (train_step, sample_prefill, "
                              "sample_decode, eval_prefill, eval_decode); default all")
_PROMPT = flags.DEFINE_integer("max_prompt_tokens", 4096, "prompt length the sampler programs are compiled for "
                                "(the prefill chunk's page table; each sample's new tokens fill the rest of its budget)")
_TOTAL = flags.DEFINE_integer("max_total_tokens", 0, "if set, the prompt + response budget of sampling and evaluation "
                              "instead of the config's sampling/eval.max_total_tokens")
flags.mark_flags_as_required(["config", "topology"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    try:
        devices = compiled_fit.topology_devices(_TOPOLOGY.value)
        targets = compiled_fit.compile_targets(_CONFIG.value, devices, max_prompt_tokens=_PROMPT.value,
                                               max_total_tokens=_TOTAL.value or None)
        unknown = set(_PROGRAMS.value) - set(targets)
        if unknown:
            raise SsdJaxError(f"--programs: unknown {sorted(unknown)}; choose from {sorted(targets)}")
        fits = []
        for name in dict.fromkeys(_PROGRAMS.value) or targets:  # in the order asked for, each row as soon as it compiles
            fits.append(compiled_fit.compile_and_measure(name, *targets[name]))
            print(compiled_fit.format_table(fits[-1:]).splitlines()[2], file=sys.stderr, flush=True)
    except SsdJaxError as error:
        sys.exit(f"compile: {error}")
    print(f"{_TOPOLOGY.value}: {len(devices)} chips")
    print(compiled_fit.format_table(fits))
    train = next((f for f in fits if f.program == "train_step"), None)
    if train:
        model_config = compiled_fit.architecture(str(_CONFIG.value.model))
        flops = compiled_fit.training_model_flops(_CONFIG.value, model_config) / train.chips
        print(f"model FLOPs of train_step (XLA's analysis counts a loop body once and a Pallas kernel not at all): "
              f"{flops / 1e12:,.0f} TFLOP per chip, {flops / train.chip.peak_flops:.1f} s per step at peak")
    too_big = [f.program for f in fits if not f.fits]
    if too_big:
        sys.exit(f"compile: does not fit in HBM: {', '.join(too_big)}")


if __name__ == "__main__":
    app.run(main)
