"""Graded samples per second: ssd-jax's sandboxed engine vs a LiveCodeBench-style harness.

The reference does what LiveCodeBench's `codegen_metrics` does: a process pool of `workers`,
and for each sample a `multiprocessing.Manager` list plus one `multiprocessing.Process` that
applies an in-process "reliability guard" (no isolation), then runs the tests in-process with
SIGALRM timeouts, patched stdin/stdout (stdin problems) or `Solution().<func>(*args)`
(functional problems). Both grade the same samples (tests/data/evaluation), with the same
number of workers, in the same run, in alternating rounds; their verdicts are compared (the
reference fails correct programs that read `sys.stdin.buffer` or `os.read(0, ...)`, which
its patched stdin cannot serve).

    python benchmarks/execution.py [--repeat 10] [--workers N]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import faulthandler
import io
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from unittest import mock

from ssd_jax.evaluation.engine import GradingJob, grade_all
from ssd_jax.evaluation.grading import stdout_matches
from ssd_jax.evaluation.prelude import LCB_PRELUDE
from ssd_jax.evaluation.sandbox.isolation import resolve_isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.problems import BenchmarkProblem, load_benchmark

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "evaluation"
TIMEOUT_S = 6


# -- the LiveCodeBench-style reference ------------------------------------------------------------
class _Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Alarm


def _reliability_guard() -> None:
    """LiveCodeBench's kind of in-process guard: disable destructive functions (not isolation)."""
    import builtins
    import shutil
    import subprocess

    faulthandler.disable()
    builtins.quit = None
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
                 "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod",
                 "fchown", "chmod", "chown", "chroot", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def _run_stdin_test(code_object, test_input: str) -> str:
    lines = iter(test_input.split("\n"))
    captured = io.StringIO()
    with mock.patch("builtins.open", mock.mock_open(read_data=test_input)), \
            mock.patch("sys.stdin", io.StringIO(test_input)), \
            mock.patch("sys.stdin.readline", lambda *args: next(lines)), \
            mock.patch("sys.stdin.readlines", lambda *args: test_input.split("\n")), \
            mock.patch("sys.stdin.read", lambda *args: test_input), \
            mock.patch("sys.stdout", captured):
        try:
            exec(code_object, {"__name__": "__main__"})
        except SystemExit:
            pass
    return captured.getvalue()


def _lcb_tests(problem: BenchmarkProblem, code: str, results) -> None:
    signal.signal(signal.SIGALRM, _on_alarm)
    _reliability_guard()
    verdicts = []
    try:
        if problem.kind == "functional":
            namespace = {}
            exec(LCB_PRELUDE + "\n" + code, namespace)
            method = getattr(namespace["Solution"](), problem.func_name)
        else:
            code_object = compile(LCB_PRELUDE + "\n" + code, "<solution>", "exec")
        for test in problem.tests:
            signal.alarm(TIMEOUT_S)
            try:
                if problem.kind == "functional":
                    value = method(*[json.loads(line) for line in test.input.split("\n")])
                    ok = (list(value) if isinstance(value, tuple) else value) == json.loads(test.output)
                else:
                    ok = stdout_matches(_run_stdin_test(code_object, test.input), test.output)
            finally:
                signal.alarm(0)
            verdicts.append(ok)
            if not ok:
                break
    except BaseException:
        verdicts.append(False)
    results.append(verdicts)


def lcb_style_check(problem: BenchmarkProblem, code: str) -> bool:
    """One sample as LiveCodeBench's check_correctness grades it: Manager + Process."""
    manager = multiprocessing.Manager()
    results = manager.list()
    process = multiprocessing.Process(target=_lcb_tests, args=(problem, code, results))
    process.start()
    process.join(timeout=(TIMEOUT_S + 1) * len(problem.tests) + 5)
    if process.is_alive():
        process.kill()
    passed = bool(results) and len(results[0]) == len(problem.tests) and all(results[0])
    manager.shutdown()
    return passed


def run_lcb_style(jobs: list[GradingJob], workers: int) -> list[bool]:
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lcb_style_check, [j.problem for j in jobs], [j.code for j in jobs]))


# -- the measurement -------------------------------------------------------------------------------
class CpuMeter:
    """CPU seconds used by this process and every descendant (sandboxes included, which plain
    rusage misses: bwrap's inner processes are reaped by init). Uses a cgroup-v1 cpuacct group
    when one can be made (root); otherwise reports nothing. Unlike wall time it does not
    depend on what else the machine is running."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self):
        self.group = self.ROOT / f"ssd-execution-bench-{os.getpid()}"
        try:
            self.group.mkdir()
            (self.group / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            self.group = None

    def seconds(self) -> float | None:
        return None if self.group is None else int((self.group / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        if self.group is not None:
            (self.ROOT / "cgroup.procs").write_text(str(os.getpid()))
            time.sleep(0.5)  # sandboxes' last processes are reaped by init
            try:
                self.group.rmdir()
            except OSError:
                print(f"note: {self.group} is still busy; remove it later with rmdir")


def load_jobs(repeat: int) -> list[GradingJob]:
    problems = {p.id: p for p in load_benchmark("livecodebench", DATA / "livecodebench", release_version="release_v2")}
    solutions = [json.loads(line) for line in (DATA / "solutions.jsonl").read_text().splitlines()]
    return [GradingJob(problems[s["problem_id"]], s["code"]) for s in solutions] * repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="copies of the 19 fixture samples")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds (ssd-jax, then reference)")
    args = parser.parse_args()
    jobs = load_jobs(args.repeat)
    isolation = resolve_isolation()
    limits = Limits(timeout_s=TIMEOUT_S)

    meter = CpuMeter()
    times, cpu = {"ours": [], "reference": []}, {"ours": [], "reference": []}
    try:
        for _ in range(args.rounds):  # alternate, so load from elsewhere on the machine hits both alike
            for name, grade in (("ours", lambda: grade_all(jobs, limits, isolation, workers=args.workers, progress=False)),
                                ("reference", lambda: run_lcb_style(jobs, args.workers))):
                cpu_start, start = meter.seconds(), time.perf_counter()
                results = grade()
                times[name].append(time.perf_counter() - start)
                if cpu_start is not None:
                    cpu[name].append(meter.seconds() - cpu_start)
                if name == "ours":
                    ours = results
                else:
                    reference = results
    finally:
        meter.close()

    agree = sum(r.passed == p for r, p in zip(ours, reference))
    print(f"{len(jobs)} samples, {sum(len(j.problem.tests) for j in jobs)} tests, {args.workers} workers, "
          f"best of {args.rounds} rounds; verdicts agree on {agree}/{len(jobs)}")
    print(f"| {'harness':<40} | {'seconds':>8} | {'samples/s':>9} | {'CPU ms/sample':>13} |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 11}|{'-' * 15}|")
    for name, label in (("ours", "ssd-jax sandboxed engine (bubblewrap)"), ("reference", "LiveCodeBench-style (Process + guard)")):
        per_sample = f"{1000 * min(cpu[name]) / len(jobs):.1f}" if cpu[name] else "n/a"
        print(f"| {label:<40} | {min(times[name]):>8.2f} | {len(jobs) / min(times[name]):>9.1f} | {per_sample:>13} |")
    paired = sorted(r / o for o, r in zip(times["ours"], times["reference"]))
    print(f"throughput ratio (ssd-jax / LiveCodeBench-style), median of the paired rounds: "
          f"{paired[len(paired) // 2]:.2f}; of the best rounds: {min(times['reference']) / min(times['ours']):.2f}")
    if cpu["ours"] and cpu["reference"]:
        print(f"CPU per graded sample, ratio (LiveCodeBench-style / ssd-jax): {min(cpu['reference']) / min(cpu['ours']):.2f}")
    print("every round, seconds: ssd-jax " + " ".join(f"{t:.2f}" for t in times["ours"])
          + " | LiveCodeBench-style " + " ".join(f"{t:.2f}" for t in times["reference"]))


if __name__ == "__main__":
    main()
