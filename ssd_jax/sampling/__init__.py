"""Token sampling: logit filtering (temperature, top-k, top-p) and the sampler."""

from ssd_jax.sampling.filter import filter_logits, sample_token

__all__ = ["filter_logits", "sample_token"]
