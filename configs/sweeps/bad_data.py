"""The paper's bad-data stress test, on Qwen3-30B-A3B-Instruct-2507: SSD data sampled at
T_train 2.0 with no top-k and no top-p truncation, and trained on every raw sample (no filter:
empty, stub and cut-off samples too).

The same stress test on a supported model, from its paper config:

    python launch/ssd.py --config=configs/paper/qwen3_4b_instruct.py \\
        --config.workdir=runs/bad_data_qwen3_4b_instruct --config.sampling.temperature=2.0 \\
        --config.sampling.top_k=0 --config.sampling.top_p=1.0 --config.data.filter=none \\
        --config.data.truncated=keep
"""

from configs.paper import qwen3_30b_a3b_instruct

STRESS = {
    "sampling.temperature": 2.0,
    "sampling.top_k": 0,  # no top-k
    "sampling.top_p": 1.0,  # no top-p
    "data.filter": "none",  # every raw sample, empty and single-line ones too
    "data.truncated": "keep",  # and the ones cut off at the token budget
}


def get_config():
    c = qwen3_30b_a3b_instruct.get_config()
    c.workdir = "runs/bad_data_qwen3_30b_a3b_instruct"
    for field, value in STRESS.items():
        section, name = field.split(".")
        c[section][name] = value
    return c
