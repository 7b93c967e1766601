"""Sample SSD training data from the frozen base model (stage `sample`).

    python launch/sample.py --config=configs/<file>.py [--config.<field>=<value> ...]

Writes sample shards to `<workdir>/samples/` (ssd_jax/stages/sample.py); dump them with
`launch/dump_samples.py --input=<workdir>/samples`. Rerunning the same command resumes: samples
already written are skipped, none is duplicated; changed settings are refused. On a pod, run it
on every host (launch/tpu/run.sh).
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
    run_stages(config, ["sample"])


if __name__ == "__main__":
    launcher.run(main)
