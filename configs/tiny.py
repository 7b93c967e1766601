"""A tiny random model end to end in seconds on a CPU: the config the tests use."""

from configs import base


def get_config():
    c = base.get_config()
    c.workdir = "runs/tiny"
    c.model = "tiny-random"
    c.prompts.source = "offline"
    c.prompts.limit = 8
    c.sampling.max_new_tokens = 24
    c.sampling.batch_size = 8
    c.sampling.n_samples = 2
    c.data.filter = "none"  # A random model's samples are noise: keep them all,
    c.data.truncated = "keep"  # including the ones cut at max_new_tokens (nearly all of them).
    c.data.max_length = 512
    c.data.overlong = "truncate"
    c.train.steps = 6
    c.train.global_batch = 4
    c.train.warmup_steps = 2
    c.train.peak_learning_rate = 1e-3
    c.train.final_learning_rate = 1e-4
    c.train.checkpoint_every = 3
    c.eval.n_samples = 2
    c.eval.benchmark.limit = 4
    c.eval.temperatures = (0.5, 1.0)
    c.eval.max_new_tokens = 24
    c.eval.batch_size = 8  # = the requests per temperature: no padded rows (byte-level prompts are long).
    return c
