"""Evaluate models on a benchmark over a temperature grid, with sandboxed grading (stage `evaluate`).

    python launch/evaluate.py --config=configs/<file>.py [--config.eval.<field>=<value> ...]

Writes `<workdir>/eval/` (ssd_jax/stages/evaluate.py): each process's samples.jsonl and
verdicts.jsonl, then results.json and pass_at_1.png, and prints the table. Rerunning resumes;
changed settings are refused. On a pod, run it on every host: the problems are split between them.
"""

from absl import app
from ml_collections import config_flags

from ssd_jax import launcher
from ssd_jax.logs import quiet_library_logs
from ssd_jax.stages import run_stages

_CONFIG = config_flags.DEFINE_config_file("config", None, "run config file", lock_config=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = launcher.given_config(_CONFIG)
    quiet_library_logs()
    run_stages(config, ["evaluate"])


if __name__ == "__main__":
    launcher.run(main)
