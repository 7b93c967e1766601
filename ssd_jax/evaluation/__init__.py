"""Evaluation: generate answers over a temperature grid, grade them in a sandbox, report pass@k.

  evaluator        the grid (models × temperatures × samples): generate what is missing,
                   grade what is ungraded, collect results.json
  prompts          the prompt styles (LiveCodeBench's, the paper's release's), code extraction
  generation       what the evaluator asks of a model; the default answerer (ssd-jax's sampler)
  jsonl_store      the resumable samples/verdicts stores (append-only JSONL, local or gs://)
  engine           grades many samples in parallel sandboxes, retrying infrastructure failures
  grading          one sample: its tests one at a time in a sandbox, judged here (output matching)
  reference_calls  HumanEval's recorded calls and the comparison of return values (as EvalPlus)
  prelude          LiveCodeBench's import prelude, bound lazily
  sandbox/         run one program isolated: isolation (bubblewrap), session (talking to it),
                   harness (the trusted loop inside), limits
  report           pass@k with bootstrap intervals, results.json, the plot, base vs SSD

Benchmark problems and their loaders live in ssd_jax.problems (the prompt sources share them).
"""

from ssd_jax.evaluation.report import pass_at_k

__all__ = ["pass_at_k"]
