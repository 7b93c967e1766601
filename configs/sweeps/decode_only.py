"""The decode-only baseline: sweep the base model's evaluation temperature, no SSD at all.

The paper finds this stays well below SSD (Qwen3-30B-Instruct: 41.3–43.5 vs 55.3).
"""

from configs.paper import qwen3_4b_instruct


def get_config():
    c = qwen3_4b_instruct.get_config()
    c.workdir = "runs/decode_only_qwen3_4b_instruct"
    c.stages = "evaluate"
    c.eval.include_ssd = False
    c.eval.temperatures = (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)
    return c
