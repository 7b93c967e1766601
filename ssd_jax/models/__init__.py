"""Flax NNX decoder models (Llama and Qwen3 dense families)."""

from ssd_jax.models.config import ModelConfig, RopeScaling, UnsupportedModelError
from ssd_jax.models.kv_cache import KVCache, init_cache
from ssd_jax.models.transformer import Transformer

__all__ = ["KVCache", "ModelConfig", "RopeScaling", "Transformer", "UnsupportedModelError", "init_cache"]
