"""ssd-jax: simple self-distillation (SSD) for code generation, in JAX."""

__version__ = "0.1.0"


def load_model(ref: str, **kwargs):
    """Loads a checkpoint reference (HF dir, .gguf, ssd-jax checkpoint, built-in name); see
    `ssd_jax.checkpoints.load.load_model`."""
    from ssd_jax.checkpoints.load import load_model as _load_model

    return _load_model(ref, **kwargs)
