"""The paper's stress test: train on every raw sample, unfiltered (empty and stub responses too)."""

from configs.paper import qwen3_4b_instruct


def get_config():
    c = qwen3_4b_instruct.get_config()
    c.workdir = "runs/bad_data_qwen3_4b_instruct"
    c.data.filter = "none"
    return c
