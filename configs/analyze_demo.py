"""Lock/fork diagnostics of the demo's base and SSD models on the demo's own SSD samples.

    python launch/ssd.py --config=configs/demo.py        # writes runs/demo (samples, SSD model)
    python launch/analyze.py --config=configs/analyze_demo.py

Every position of the 48 sampled responses (up to 256 tokens each), base model first (it
classifies locks and forks), the SSD model second; the sweep uses the demo's evaluation
truncation (top-k 20, top-p 0.8). Mind that these are the responses SSD was fine-tuned on: the
SSD model has seen every one of them, so its shifts here include memorisation. For a held-out
view point `analysis.samples` at responses it did not train on (e.g. `launch/sample.py` run on
other prompts, or a JSONL of prompt_text/completion).
"""

from configs import demo


def get_config():
    c = demo.get_config()
    c.analysis.models = ("base=smollm2-135m-instruct", "ssd=runs/demo/train/final")
    c.analysis.batch_size = 8
    c.analysis.max_response_tokens = 256
    return c
