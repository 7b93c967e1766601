"""The embedded default's recipe at full size, for one GPU or TPU host (not a CPU).

    python launch/ssd.py --config=configs/demo_full.py

Same model, prompts, benchmark and sampling recipe as `configs/demo.py`, with nothing cut:
all 235 offline problems × 4 samples for SSD data (~100k response tokens), two epochs of
training, and all 164 HumanEval problems × 10 samples at five temperatures for both models
(16,400 samples, so pass@5 too). On the 2-core CPU that `demo.py` was measured on this would take
days (sampling ~45 tokens/s, training ~60 tokens/s); SmolLM2-135M on one accelerator decodes
thousands of tokens/s at batch 64, so the run is dominated by evaluation and takes on the order of
an hour on one host. Not measured here: this machine has no accelerator.
"""

from configs import demo


def get_config():
    c = demo.get_config()
    c.workdir = "runs/demo_full"
    c.prompts.limit = 0
    c.sampling.n_samples = 4
    c.sampling.max_new_tokens = 512
    c.data.truncated = "keep"  # a small CPU budget cuts many samples; SmolLM2 has no thinking block to break
    c.sampling.batch_size = 64

    c.data.max_length = 2048
    c.train.global_batch = 16
    c.train.steps = 80
    c.train.warmup_steps = 8
    c.train.checkpoint_every = 20
    c.train.log_every = 10

    c.eval.benchmark.limit = 0
    c.eval.temperatures = (0.2, 0.4, 0.6, 0.8, 1.0)
    c.eval.n_samples = 10
    c.eval.max_new_tokens = 512
    c.eval.batch_size = 64
    return c
