"""Grade many samples in parallel, losing none.

Each worker thread drives one sandbox at a time (the programs run in their own processes, so
threads suffice and the evaluator stays one process). A sample whose grading fails for a
reason outside the program — the sandbox could not start, the grading machinery raised — is
retried once, then recorded as an `error` result saying why; it never disappears.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import os
import threading
from collections.abc import Callable, Sequence

from tqdm import tqdm

from ssd_jax.evaluation.grading import GradeResult, grade, no_code_result, num_tests, start_session
from ssd_jax.evaluation.reference_calls import REFERENCE_CALLS
from ssd_jax.evaluation.sandbox.isolation import Isolation
from ssd_jax.evaluation.sandbox.limits import Limits
from ssd_jax.evaluation.sandbox.session import Session
from ssd_jax.problems.types import BenchmarkProblem

ATTEMPTS = 2


@dataclasses.dataclass(frozen=True)
class GradingJob:
    """One sample to grade: `code` is None when no code could be extracted from the response."""

    problem: BenchmarkProblem
    code: str | None


class WarmPool:
    """Sandboxes started ahead of need: each `take` hands out the oldest and starts a successor,
    so namespace setup and interpreter imports overlap with other samples' tests instead of
    leaving a core idle while a worker waits for them."""

    def __init__(self, start: Callable[[], Session], size: int):
        self._start = start
        self._lock = threading.Lock()
        self._ready = collections.deque(start() for _ in range(size))

    def take(self) -> Session:
        with self._lock:
            session = self._ready.popleft() if self._ready else self._start()
            self._ready.append(self._start())
        return session

    def close(self) -> None:
        with self._lock:
            while self._ready:
                self._ready.popleft().close()


def grade_with_retry(job: GradingJob, limits: Limits, isolation: Isolation,
                     pool: WarmPool | None = None) -> GradeResult:
    """Grades `job`; infrastructure failures are retried once, then recorded as an error."""
    if job.code is None:
        return no_code_result(job.problem)
    failures = []
    for attempt in range(ATTEMPTS):
        try:
            session = pool.take() if pool is not None and attempt == 0 else None
            return grade(job.problem, job.code, limits, isolation, session)
        except Exception as error:  # noqa: BLE001 - any failure of the grader is recorded, never lost
            failures.append(f"{type(error).__name__}: {error}")
    return GradeResult(False, "error", ("not_run",) * num_tests(job.problem),
                       "grader failed twice: " + " | ".join(failures), 0.0, isolation.sandboxed)


def grade_all(
    jobs: Sequence[GradingJob],
    limits: Limits,
    isolation: Isolation,
    *,
    workers: int | None = None,
    on_result: Callable[[int, GradeResult], None] | None = None,
    progress: bool = True,
    warm_pool: bool = True,
) -> list[GradeResult]:
    """Grades every job with `workers` parallel sandboxes (default: one per core).

    `on_result(index, result)` is called in this thread as each result arrives (the evaluator
    appends it to disk there), so a killed run keeps everything graded so far.
    """
    workers = workers or os.cpu_count() or 1
    results: list[GradeResult | None] = [None] * len(jobs)
    REFERENCE_CALLS.prepare([job.problem for job in jobs if job.code is not None], isolation)  # one run for all
    warm = WarmPool(lambda: start_session(limits, isolation), workers) if warm_pool and jobs else None
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grader") as threads, \
            tqdm(total=len(jobs), desc="grading", unit="sample", disable=not progress) as bar:
        futures = {threads.submit(grade_with_retry, job, limits, isolation, warm): index
                   for index, job in enumerate(jobs)}
        for future in concurrent.futures.as_completed(futures):
            index = futures[future]
            results[index] = future.result()
            if on_result is not None:
                on_result(index, results[index])
            bar.update(1)
    if warm is not None:
        warm.close()
    return results
