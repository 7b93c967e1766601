"""The whole SSD pipeline: sample from the base model, fine-tune on the samples, evaluate both.

    python launch/ssd.py --config=configs/<file>.py [--config.stages=train,evaluate] [--config.<field>=<value>]

Finished stages are skipped; a killed run restarts where it stopped (see ssd_jax/pipeline.py).
"""

from absl import app
from ml_collections import config_flags

from ssd_jax import launcher

_CONFIG = config_flags.DEFINE_config_file("config", None, "pipeline config file", lock_config=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = launcher.validated_config(_CONFIG, stages=None)
    from ssd_jax.logs import quiet_library_logs  # JAX loads from here on, after the config is checked
    from ssd_jax.pipeline import run_pipeline

    quiet_library_logs()
    run_pipeline(config)


if __name__ == "__main__":
    launcher.run(main)
