"""Training tokens/s: ssd-jax's train step vs a plain PyTorch step of transformers' Llama.

Both train SmolLM2-135M-Instruct from the same weights (our model exported with `export_hf`,
then loaded by `AutoModelForCausalLM.from_pretrained`), in float32 on the CPU, on the same
batch × length of token ids, with the same optimizer step: global-norm clipping to 1.0, then
AdamW (β 0.9/0.95, weight decay 0.1 on all but norm scales). ssd-jax runs the trainer's own
jitted step (`ssd_jax.training.step.make_train_step`); PyTorch runs forward, cross-entropy,
backward, `clip_grad_norm_`, `AdamW.step` (the same next-token mean cross-entropy as ours).

Each side runs in its own worker process, so neither framework's idle thread pool competes
with the other's work. After a warm-up step each, the sides take turns (so load changes on a
shared machine hit both alike); a turn is `--steps_per_turn` consecutive steps, as a training
loop runs them. The first step of each turn is reported apart ("first of a turn") and the rest
give the median wall and CPU time: a process that sat idle through the other side's turn runs
its next step slower, ssd-jax much more than PyTorch (3.4-4.7 s in our runs against ~2.5 s, and
no better with huge pages, so page faults do not explain it), so alternating single steps would
measure that pause, not training.

Each side runs as it is meant to run on a CPU: ssd-jax with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
(the README's setting for CPU training: malloc backs large blocks with transparent huge pages;
XLA's CPU runtime allocates a step's ~1.4 GB of temporaries afresh, and this cuts the page
faults from ~357k to ~1k per step and our step by ~0.2 s), PyTorch as it ships, with the
default malloc (the setting does not help it: see the README). `--huge-pages both|none` runs
both sides alike.

MFU divides the model FLOPs of a step by the step time and by the machine's float32 matmul
peak, measured in the same run before and after the steps (the best of XLA and PyTorch on a
2048³ matmul). `--single-thread` pins both to one thread: on a shared machine, multi-threaded
timings swing with other tenants' load (PyTorch's OpenMP barriers suffer most),
single-threaded ones much less.

    python benchmarks/train.py [--batch 2] [--length 256] [--rounds 3] [--steps_per_turn 3] [--single-thread] [--huge-pages ssd-jax|both|none]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

LEARNING_RATE = 1e-5
HUGE_PAGES = "glibc.malloc.hugetlb=1"  # malloc asks for transparent huge pages (README: CPU runs)
_RESULT = "RESULT "


def step_flops(config, batch: int, length: int) -> float:
    """Forward + backward FLOPs of one step: 6 per matmul weight per token (blocks and LM head),
    plus attention scores and values, 12·layers·heads·head_dim·length per token (the full L×L
    product, as both implementations compute it)."""
    d, h, kv, hd = config.hidden_size, config.num_heads, config.num_kv_heads, config.head_dim
    per_layer = d * h * hd + 2 * d * kv * hd + h * hd * d + 3 * d * config.intermediate_size
    matmul_weights = config.num_layers * per_layer + d * config.vocab_size
    attention = 12 * config.num_layers * h * hd * length
    return batch * length * (6 * matmul_weights + attention)


def _tokens(vocab_size: int, batch: int, length: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, vocab_size, (batch, length + 1)).astype(np.int32)


class JaxTrainer:
    """ssd-jax's jitted training step on one device."""

    def __init__(self, loaded, tokens: np.ndarray):
        import jax

        from configs import base
        from ssd_jax.training import state
        from ssd_jax.training.optimizer import (
            OptimizerSettings,
            make_optimizer,
            weight_decay_mask,
        )
        from ssd_jax.training.step import make_train_step

        self._jax, mesh = jax, loaded.mesh
        self.params = state.split_params(loaded.model)[1]
        graphdef = state.split_params(loaded.model)[0]
        config = base.get_config()  # the paper's AdamW settings, at a constant learning rate
        config.train.update(steps=1000, peak_learning_rate=LEARNING_RATE, final_learning_rate=LEARNING_RATE,
                            warmup_steps=0)
        settings = OptimizerSettings.from_config(config)
        optimizer = make_optimizer(settings, weight_decay_mask(loaded.model))
        param_shardings = state.param_shardings(loaded.model, mesh)
        opt_shardings = state.opt_state_shardings(optimizer, self.params, param_shardings, mesh)
        self.opt_state = state.init_opt_state(optimizer, self.params, opt_shardings)
        batch, length = tokens.shape[0], tokens.shape[1] - 1
        host = {
            "inputs": tokens[None, :, :-1], "targets": tokens[None, :, 1:],
            "weights": np.ones((1, batch, length), np.float32),
            "segment_ids": np.ones((1, batch, length), np.int32),
            "positions": np.broadcast_to(np.arange(length, dtype=np.int32), (1, batch, length)).copy(),
        }
        shardings = state.batch_shardings({k: v.shape for k, v in host.items()}, mesh)
        self.batch = state.put_batch(host, shardings)
        self._step = make_train_step(graphdef, optimizer, param_shardings, opt_shardings, shardings)

    def step(self) -> float:
        self.params, self.opt_state, metrics = self._step(self.params, self.opt_state, self.batch)
        return float(metrics["loss"])

    def matmul_seconds(self, a: np.ndarray) -> float:
        x = self._jax.numpy.asarray(a)
        dot = self._jax.jit(lambda x: x @ x)
        dot(x).block_until_ready()
        return _best_of(lambda: dot(x).block_until_ready())


class TorchTrainer:
    """A plain PyTorch training step of transformers' implementation of the same model."""

    def __init__(self, hf_dir: str, tokens: np.ndarray):
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_flush_denormal(True)  # XLA's CPU runtime flushes denormals too
        self._torch = torch
        self.model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
        self.model.train()
        named = list(self.model.named_parameters())
        self.optimizer = torch.optim.AdamW(
            [{"params": [p for n, p in named if "norm" not in n], "weight_decay": 0.1},
             {"params": [p for n, p in named if "norm" in n], "weight_decay": 0.0}],
            lr=LEARNING_RATE, betas=(0.9, 0.95),
        )
        tokens = torch.from_numpy(tokens.astype(np.int64))
        self.inputs, self.targets = tokens[:, :-1], tokens[:, 1:]

    def step(self) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(input_ids=self.inputs).logits
        loss = self._torch.nn.functional.cross_entropy(logits.flatten(0, 1), self.targets.flatten())
        loss.backward()
        self._torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        return loss.item()

    def matmul_seconds(self, a: np.ndarray) -> float:
        t = self._torch.from_numpy(a)
        self._torch.mm(t, t)
        return _best_of(lambda: self._torch.mm(t, t))


def _best_of(run, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _reply(**fields) -> None:
    print(_RESULT + json.dumps(fields), flush=True)


def worker(side: str, model: str, hf_dir: str, batch: int, length: int) -> None:
    """Builds one side's trainer, then serves `step` / `peak` / `quit` commands from stdin."""
    if side == "ssd-jax":
        import ssd_jax

        loaded = ssd_jax.load_model(model)
        loaded.export_hf(hf_dir)
        trainer = JaxTrainer(loaded, _tokens(loaded.config.vocab_size, batch, length))
        _reply(flops=step_flops(loaded.config, batch, length))
    else:
        import torch

        with open(f"{hf_dir}/config.json") as f:
            vocab_size = json.load(f)["vocab_size"]
        trainer = TorchTrainer(hf_dir, _tokens(vocab_size, batch, length))
        _reply(threads=torch.get_num_threads())
    for command in sys.stdin:
        if command.strip() == "step":
            start, cpu_start = time.perf_counter(), time.process_time()
            loss = trainer.step()
            _reply(seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start, loss=loss)
        elif command.strip() == "peak":
            n = 2048
            seconds = trainer.matmul_seconds(np.random.default_rng(0).standard_normal((n, n), np.float32))
            _reply(flops_per_s=2 * n**3 / seconds)
        else:
            return


class Worker:
    def __init__(self, side: str, args: argparse.Namespace, hf_dir: str):
        command = [sys.executable, __file__, "--worker", side, "--model", args.model, "--hf-dir", hf_dir,
                   "--batch", str(args.batch), "--length", str(args.length)]
        env = dict(os.environ)
        if args.huge_pages in (side, "both"):
            env["GLIBC_TUNABLES"] = HUGE_PAGES
        if args.single_thread:
            env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                       XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, env=env)
        self.ready = self.result()

    def result(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(_RESULT):
                return json.loads(line[len(_RESULT):])
        raise RuntimeError(f"the {self.process.args[3]} worker exited with status {self.process.wait()}")

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.result()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--length", type=int, default=256, help="tokens per row trained on")
    parser.add_argument("--rounds", type=int, default=3, help="turns per side, alternating")
    parser.add_argument("--steps_per_turn", type=int, default=3, help="consecutive steps in a turn (at least 2)")
    parser.add_argument("--single-thread", action="store_true", help="one thread per framework")
    parser.add_argument("--huge-pages", choices=("ssd-jax", "both", "none"), default="ssd-jax",
                        help=f"which workers run with GLIBC_TUNABLES={HUGE_PAGES}")
    parser.add_argument("--worker", choices=("ssd-jax", "pytorch"), help=argparse.SUPPRESS)
    parser.add_argument("--hf-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps_per_turn < 2:
        parser.error("--steps_per_turn must be at least 2: each turn's first step is not in the medians")
    if args.worker:
        worker(args.worker, args.model, args.hf_dir, args.batch, args.length)
        return

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as hf_dir:
        ours = Worker("ssd-jax", args, hf_dir)
        theirs = Worker("pytorch", args, hf_dir)
        peaks = {"XLA": ours.ask("peak")["flops_per_s"], "PyTorch": theirs.ask("peak")["flops_per_s"]}
        warm_up = {"ssd-jax": ours.ask("step"), "pytorch": theirs.ask("step")}
        steps = {"ssd-jax": [], "pytorch": []}
        first_of_turn = {"ssd-jax": [], "pytorch": []}
        for _ in range(args.rounds):
            for name, side in (("ssd-jax", ours), ("pytorch", theirs)):
                turn = [side.ask("step") for _ in range(args.steps_per_turn)]
                first_of_turn[name].append(turn[0])
                steps[name].extend(turn[1:])
        peaks["XLA"] = max(peaks["XLA"], ours.ask("peak")["flops_per_s"])
        peaks["PyTorch"] = max(peaks["PyTorch"], theirs.ask("peak")["flops_per_s"])
        ours.close()
        theirs.close()

    peak, flops, tokens_per_step = max(peaks.values()), ours.ready["flops"], args.batch * args.length
    threads = "1 thread each" if args.single_thread else f"{os.cpu_count()} cores, {theirs.ready['threads']} torch threads"
    threads += {"ssd-jax": f", ssd-jax with GLIBC_TUNABLES={HUGE_PAGES}", "none": ", default malloc",
                "both": f", both with GLIBC_TUNABLES={HUGE_PAGES}"}[args.huge_pages]
    print(f"\nSmolLM2-135M training step, float32, CPU ({threads}; load average {load_before:.1f} → "
          f"{os.getloadavg()[0]:.1f}); batch {args.batch} × {args.length} tokens; {args.rounds} alternating turns of "
          f"{args.steps_per_turn} steps after one warm-up step (ssd-jax's includes compiling: "
          f"{warm_up['ssd-jax']['seconds']:.1f} s); medians of all but each turn's first step")
    print(f"first-step loss: ssd-jax {warm_up['ssd-jax']['loss']:.5f}, pytorch {warm_up['pytorch']['loss']:.5f}")
    print("float32 matmul peak (2048³): " + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peaks.items())
          + f"; MFU uses {peak / 1e9:.1f}")
    print(f"model FLOPs per step: {flops / 1e9:.1f} GFLOP\n")
    print("| implementation | step time (s) | CPU time per step (s) | tokens/s | MFU | first of a turn (s) |")
    print("|---|---|---|---|---|---|")
    medians = {name: statistics.median(s["seconds"] for s in results) for name, results in steps.items()}
    for name, seconds in medians.items():
        cpu = statistics.median(s["cpu_seconds"] for s in steps[name])
        first = statistics.median(s["seconds"] for s in first_of_turn[name])
        print(f"| {name} | {seconds:.3f} | {cpu:.3f} | {tokens_per_step / seconds:.1f} | {flops / seconds / peak:.1%} "
              f"| {first:.3f} |")
    print(f"\nssd-jax / pytorch tokens/s: {medians['pytorch'] / medians['ssd-jax']:.2f}×")


if __name__ == "__main__":
    main()
