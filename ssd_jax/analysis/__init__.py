"""Lock/fork analysis: the paper's toy model and its objective decomposition, and next-token
distribution diagnostics (mass by rank, truncation survivors and entropy over a temperature
sweep, lock/fork classes) for real checkpoints. The decode-time rival, adaptive temperature,
lives in the sampler (`ssd_jax.sampling.adaptive`)."""
