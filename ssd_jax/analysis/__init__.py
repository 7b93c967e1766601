"""Lock/fork analysis: the paper's toy model, its objective decomposition, next-token
distribution diagnostics for real checkpoints, and adaptive (per-position) temperature."""
