"""Evaluation: benchmarks, sandboxed execution, grading, pass@k over a temperature grid."""

from ssd_jax.evaluation.passk import pass_at_k

__all__ = ["pass_at_k"]
