"""Fine-tune a model on its own sample shards (stage `train`).

    python launch/train.py --config=configs/<file>.py [--config.<field>=<value> ...]

Writes `<workdir>/train/` (ssd_jax/stages/train.py): checkpoints/, metrics.jsonl and TensorBoard
events and, at the end, final/ (an ssd-jax model directory for `load_model`). Rerunning the same
command resumes from the latest checkpoint; SIGTERM (on any host) saves a checkpoint on every
host and exits with status 0.
"""

from absl import app
from ml_collections import config_flags

from ssd_jax import launcher
from ssd_jax.logs import quiet_library_logs
from ssd_jax.stages import run_stages
from ssd_jax.stages.train import Preempted

_CONFIG = config_flags.DEFINE_config_file("config", None, "run config file", lock_config=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = launcher.given_config(_CONFIG)
    quiet_library_logs()
    try:
        result = run_stages(config, ["train"])["train"]
    except Preempted as stopped:  # not a failure: rerunning resumes (exit status 0)
        print(f"train: {stopped}")
        return
    print(f"final model: {result['final_model']}")


if __name__ == "__main__":
    launcher.run(main)
