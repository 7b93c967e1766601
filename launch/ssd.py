"""The whole SSD pipeline: sample from the base model, fine-tune on the samples, evaluate both, report.

    python launch/ssd.py --config=configs/<file>.py [--config.stages=train,evaluate] [--config.<field>=<value>]

Finished stages are skipped; a killed run restarts where it stopped; changed settings are
refused (ssd_jax/stages/). On a pod, run it on every host (launch/tpu/run.sh).
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
        run_stages(config)
    except Preempted as stopped:  # not a failure: rerunning resumes (exit status 0)
        print(f"ssd: {stopped}")


if __name__ == "__main__":
    launcher.run(main)
