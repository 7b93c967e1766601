"""Accelerator attention kernels and their sharding wrappers (the only sharding the model sees)."""
