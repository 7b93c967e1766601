"""Evaluation: sandboxed execution, grading, pass@k over a temperature grid (benchmark problems: ssd_jax.problems)."""

from ssd_jax.evaluation.report import pass_at_k

__all__ = ["pass_at_k"]
