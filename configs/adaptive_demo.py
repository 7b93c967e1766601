"""The demo's benchmark with a third contender: the base model with adaptive (per-position) temperature.

    python launch/ssd.py --config=configs/demo.py            # the SSD model: runs/demo/train/final
    python launch/evaluate.py --config=configs/adaptive_demo.py

One evaluation grid, one table: base, base+adaptive1 (T·(2(1-p1))^1 at every position, see
ssd_jax/sampling/adaptive.py) and ssd, each at the demo's three temperatures on the same 32
HumanEval problems, with the same keys per (problem, sample) for all three.
"""

from configs import demo


def get_config():
    c = demo.get_config()
    c.workdir = "runs/demo_adaptive"
    c.eval.include_ssd = False
    c.eval.models = ("ssd=runs/demo/train/final",)
    c.eval.adaptive = (1.0,)
    return c
