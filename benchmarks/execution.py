"""Graded samples per second: ssd-jax's sandboxed engine vs a LiveCodeBench-style harness.

The reference does what LiveCodeBench's `codegen_metrics` does: a process pool of `workers`,
and for each sample a `multiprocessing.Manager` list plus one `multiprocessing.Process` that
applies an in-process "reliability guard" (no isolation), then runs the tests in-process with
SIGALRM timeouts, patched stdin/stdout (stdin problems) or `Solution().<func>(*args)`
(functional problems). Both grade the same samples (tests/data/evaluation), with the same
number of workers, in the same run; their verdicts are checked to agree.

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

from ssd_jax.evaluation.benchmarks import BenchmarkProblem, load_benchmark
from ssd_jax.evaluation.compare import stdout_matches
from ssd_jax.evaluation.engine import GradingJob, grade_all
from ssd_jax.evaluation.grading import GradingLimits
from ssd_jax.evaluation.prelude import LCB_PRELUDE
from ssd_jax.evaluation.isolation import resolve_isolation

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
def load_jobs(repeat: int) -> list[GradingJob]:
    problems = {p.id: p for p in load_benchmark("livecodebench", DATA / "livecodebench", release_version="release_v2")}
    solutions = [json.loads(line) for line in (DATA / "solutions.jsonl").read_text().splitlines()]
    return [GradingJob(problems[s["problem_id"]], s["code"]) for s in solutions] * repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10, help="copies of the 19 fixture samples")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds; the best of each counts")
    args = parser.parse_args()
    jobs = load_jobs(args.repeat)
    isolation = resolve_isolation()
    limits = GradingLimits(per_test_timeout_s=TIMEOUT_S)

    times = {"ours": [], "reference": []}
    for _ in range(args.rounds):  # alternate, so load from elsewhere on the machine hits both alike
        start = time.perf_counter()
        ours = grade_all(jobs, limits, isolation, workers=args.workers, progress=False)
        times["ours"].append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = run_lcb_style(jobs, args.workers)
        times["reference"].append(time.perf_counter() - start)

    agree = sum(r.passed == p for r, p in zip(ours, reference))
    rows = [("ssd-jax sandboxed engine (bubblewrap)", min(times["ours"])),
            ("LiveCodeBench-style (Process + guard)", min(times["reference"]))]
    print(f"{len(jobs)} samples, {sum(len(j.problem.tests) for j in jobs)} tests, {args.workers} workers, "
          f"best of {args.rounds} rounds; verdicts agree on {agree}/{len(jobs)}")
    print(f"| {'harness':<40} | {'seconds':>8} | {'samples/s':>9} |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 11}|")
    for name, seconds in rows:
        print(f"| {name:<40} | {seconds:>8.2f} | {len(jobs) / seconds:>9.1f} |")
    print(f"throughput ratio (ssd-jax / LiveCodeBench-style): {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
