"""Lock/fork diagnostics of one or more models on the same contexts, and the paper's toy model.

    python launch/analyze.py --config=configs/analyze_demo.py [--config.analysis.<field>=<value> ...]
    python launch/analyze.py --toy_model=runs/toy_model

With a config: reads `analysis.*` (configs/base.py, ssd_jax/analysis/from_config.py) and writes
`<analysis.out_dir>/analysis.json` plus cumulative_mass.png, surviving_tokens.png,
truncated_entropy.png, entropy_by_top20_mass.png and lock_fork.png. With `--toy_model=DIR`:
writes the toy model's (paper, appendix C.4) toy_model.json and toy_model.png into DIR.
"""

import json
import os
import sys

from absl import app, flags
from ml_collections import config_flags

from ssd_jax import launcher
from ssd_jax.errors import SsdJaxError
from ssd_jax.logs import quiet_library_logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "run config file", lock_config=True)
_TOY = flags.DEFINE_string("toy_model", None, "write the toy model's figures and plot into this directory")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    if _TOY.value:
        from ssd_jax.analysis import toy_model

        os.makedirs(_TOY.value, exist_ok=True)
        result = toy_model.report()
        with open(os.path.join(_TOY.value, "toy_model.json"), "w") as f:
            json.dump(result, f)
        toy_model.plot(result, os.path.join(_TOY.value, "toy_model.png"))
        for name in ("teacher", "student"):
            print(f"{name}: peak P(success) {result[name]['peak_success']:.2%} at T={result[name]['peak_temperature']:.3f}")
        for strength, entry in result["teacher_adaptive"].items():
            print(f"teacher with adaptive temperature a={strength}: peak {entry['peak_success']:.2%} "
                  f"at T={entry['peak_temperature']:.3f}")
        print("student lock keeps", ", ".join(f"{p:.1%}" for p in result["student_lock_kept"]))
        return
    if _CONFIG.value is None:
        raise app.UsageError("give --config=<file> (diagnostics) or --toy_model=<dir>")
    from ssd_jax.analysis.from_config import analyze_from_config, summary_lines

    try:
        result = analyze_from_config(_CONFIG.value)
    except SsdJaxError as error:
        sys.exit(f"analyze: {error}")
    print("\n".join(summary_lines(result)))
    print("wrote", ", ".join(result["plots"]))


if __name__ == "__main__":
    launcher.run(main)
