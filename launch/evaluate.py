"""Evaluate models on a benchmark over a temperature grid, with sandboxed grading.

    python launch/evaluate.py --config=configs/<file>.py [--config.<field>=<value> ...]

The config fields read are listed in ssd_jax/evaluation/from_config.py. Outputs go to
config.workdir: samples.jsonl, verdicts.jsonl, results.json, pass_at_1.png; the table is
printed. Rerunning with the same workdir resumes; `--config.rescore=True` re-grades the saved
samples without generating.
"""

from absl import app
from ml_collections import config_flags

from ssd_jax.evaluation.from_config import evaluate_from_config

_CONFIG = config_flags.DEFINE_config_file("config", None, "evaluation config file", lock_config=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    evaluate_from_config(_CONFIG.value)


if __name__ == "__main__":
    app.run(main)
