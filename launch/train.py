"""Fine-tune a model on its own sample shards (SSD stage 2).

    python launch/train.py --config=configs/<file>.py [--config.<field>=<value> ...]

Reads `workdir`, `model`, `seed`, `dtype`, `param_dtype`, `mesh`, `data.*` and `train.*`
(documented in configs/base.py); samples come from `data.samples_dir` (default
`<workdir>/samples`). Writes `<workdir>/train/`: checkpoints/, metrics.jsonl and, at the end,
final/ (an ssd-jax model directory for `load_model`). Rerunning the same command resumes from
the latest checkpoint; SIGTERM saves a checkpoint and exits with status 0.
"""

from absl import app, logging
from ml_collections import config_flags

from ssd_jax import launcher

_CONFIG = config_flags.DEFINE_config_file("config", None, "training config file", lock_config=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = launcher.validated_config(_CONFIG, stages=("train",))
    from ssd_jax.logs import quiet_library_logs  # JAX loads from here on, after the config is checked
    from ssd_jax.parallel.distributed import initialize_distributed
    from ssd_jax.training.trainer import train_from_config

    quiet_library_logs()
    initialize_distributed()
    result = train_from_config(config)
    logging.info("training %s at step %d; metrics in %s", result.status, result.step, result.metrics_path)
    if result.final_model:
        print(f"final model: {result.final_model}")


if __name__ == "__main__":
    launcher.run(main)
