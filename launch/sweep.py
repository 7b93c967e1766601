"""Run a sweep (a base config + variants) here one after another, or print a command per variant.

    python launch/sweep.py --sweep=configs/sweeps/t_train_x_t_eval.py [--print | --report]
                           [--base_config=configs/paper/qwen3_4b_instruct.py]
"""

from absl import app, flags

from configs.validation import validate_config
from ssd_jax import launcher, sweeps

_SWEEP = flags.DEFINE_string("sweep", None, "sweep file (BASE_CONFIG + get_sweep())", required=True)
_PRINT = flags.DEFINE_bool("print", False, "print one launch/ssd.py command per variant instead of running")
_REPORT = flags.DEFINE_bool("report", False, "print the variants' pass@1 against T_train, T_eval, T_eff and exit")
_BASE = flags.DEFINE_string("base_config", None, "run the sweep on this config instead of the sweep file's BASE_CONFIG")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    base_config, variants = sweeps.load_sweep(_SWEEP.value)
    base_config = _BASE.value or base_config
    if _REPORT.value:
        print(sweeps.sweep_report(base_config, variants))
        return
    if _PRINT.value:
        for overrides in variants:
            print(sweeps.launch_command("ssd", base_config, overrides))
        return
    from ssd_jax.stages import parse_stages, run_stages
    from ssd_jax.stages.train import Preempted

    configs = [sweeps.variant_config(base_config, overrides) for overrides in variants]
    for config in configs:  # every variant is checked before the first one starts
        validate_config(config, parse_stages(config.stages))
    try:
        for config in configs:
            run_stages(config)
    except Preempted as stopped:  # not a failure: rerunning the sweep resumes (exit status 0)
        print(f"sweep: {stopped}")
        return
    print(sweeps.sweep_report(base_config, variants))


if __name__ == "__main__":
    launcher.run(main)
