"""Evaluate models on a benchmark over a temperature grid, with sandboxed grading (SSD stage 3).

    python launch/evaluate.py --config=configs/<file>.py [--config.eval.<field>=<value> ...]

Reads `workdir`, `model`, `seed`, `dtype`, `mesh` and `eval.*` (documented in configs/base.py
and ssd_jax/evaluation/from_config.py). Writes `<workdir>/eval/`: samples.jsonl,
verdicts.jsonl, results.json, pass_at_1.png, and prints the table. Rerunning resumes;
`--config.eval.rescore=True` (where the config has that field) re-grades the saved samples
without generating. Runs on one host; the sampler shards over its devices as `mesh` says.
"""

from absl import app
from ml_collections import config_flags

from ssd_jax import launcher

_CONFIG = config_flags.DEFINE_config_file("config", None, "run config file", lock_config=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = launcher.validated_config(_CONFIG, stages=("evaluate",))
    from ssd_jax.evaluation.from_config import evaluate_from_config  # JAX loads from here on
    from ssd_jax.logs import quiet_library_logs
    from ssd_jax.parallel.distributed import initialize_distributed

    quiet_library_logs()
    initialize_distributed()
    evaluate_from_config(config)


if __name__ == "__main__":
    launcher.run(main)
