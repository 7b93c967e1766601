"""Token sampling: logit filtering (temperature, top-k, top-p) and the sampler."""

from ssd_jax.sampling.completions import Completion
from ssd_jax.sampling.filter import filter_logits
from ssd_jax.sampling.sampler import PromptTooLongError, Sampler, SampleRequest

__all__ = ["Completion", "PromptTooLongError", "SampleRequest", "Sampler", "filter_logits"]
