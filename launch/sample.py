"""Sample SSD training data from the frozen base model (stage 1).

    python launch/sample.py --config=configs/<file>.py [--config.<field>=<value> ...]

Reads `workdir`, `model`, `seed`, `dtype`, `param_dtype`, `prompts.*` and `sampling.*`
(documented in configs/base.py). Writes sample shards to `<workdir>/samples/`; dump them with
`launch/dump_samples.py --input=<workdir>/samples`. Rerunning the same command resumes: samples
already written are skipped, none is duplicated. On a TPU pod run it on every host.
"""

from absl import app
from ml_collections import config_flags

from ssd_jax import launcher

_CONFIG = config_flags.DEFINE_config_file("config", None, "sampling config file", lock_config=True)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = launcher.validated_config(_CONFIG, stages=("sample",))
    from ssd_jax.logs import quiet_library_logs  # JAX loads from here on, after the config is checked
    from ssd_jax.parallel.distributed import initialize_distributed
    from ssd_jax.sampling.job import sample_from_config

    quiet_library_logs()
    initialize_distributed()
    summary = sample_from_config(config)
    print(
        f"{summary.written} samples written ({summary.completion_tokens} tokens), {summary.already_done} already "
        f"done, {summary.too_long} prompts too long for the context; shards in {summary.shard_dir}"
    )


if __name__ == "__main__":
    launcher.run(main)
