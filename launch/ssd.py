"""The whole SSD pipeline: sample from the base model, fine-tune on the samples, evaluate both.

    python launch/ssd.py --config=configs/<file>.py [--config.stages=train,evaluate] [--config.<field>=<value>]

Finished stages are skipped; a killed run restarts where it stopped (see ssd_jax/pipeline.py).
"""

import sys

from absl import app
from ml_collections import config_flags

from ssd_jax.logs import quiet_library_logs
from ssd_jax.pipeline import StageSettingsChangedError, run_pipeline

_CONFIG = config_flags.DEFINE_config_file("config", None, "pipeline config file", lock_config=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    try:
        run_pipeline(_CONFIG.value)
    except (FileNotFoundError, ValueError, StageSettingsChangedError) as error:
        sys.exit(f"ssd: {error}")


if __name__ == "__main__":
    app.run(main)
