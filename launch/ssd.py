"""The whole SSD pipeline: sample from the base model, fine-tune on the samples, evaluate both, report.

    python launch/ssd.py --config=configs/<file>.py [--config.stages=train,evaluate] [--config.<field>=<value>]

Finished stages are skipped; a killed run restarts where it stopped; changed settings are
refused (ssd_jax/stages/). On a pod, run it on every host (launch/tpu/run.sh).
"""

import sys

from absl import app
from ml_collections import config_flags

from ssd_jax.errors import SsdJaxError
from ssd_jax.logs import quiet_library_logs
from ssd_jax.stages import run_stages
from ssd_jax.stages.train import Preempted

_CONFIG = config_flags.DEFINE_config_file("config", None, "run config file", lock_config=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    try:
        run_stages(_CONFIG.value)
    except Preempted as stopped:
        print(f"ssd: {stopped}")
    except SsdJaxError as error:
        sys.exit(f"ssd: {error}")


if __name__ == "__main__":
    app.run(main)
