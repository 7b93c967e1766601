"""Compiling for a real TPU topology on this CPU host (libtpu), shared by the compile tests.

`requires_libtpu` skips a module where libtpu is not installed (nothing can be compiled for a
TPU then); `run_compile_launcher` runs `launch/compile.py` as a subprocess (its real exit status
and output) on a fresh JAX, neither the tests' fake CPU devices nor their platform pinned;
`write_model_dir` gives it a model directory holding only an architecture's `config.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssd_jax.models import ModelConfig

try:
    import libtpu  # noqa: F401
except ImportError:
    libtpu = None

requires_libtpu = pytest.mark.skipif(libtpu is None, reason="libtpu is not installed (pip install -e '.[test]'), "
                                                             "so nothing can be compiled for a TPU topology")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_model_dir(tmp_path: Path, name: str, config: ModelConfig) -> Path:
    """`tmp_path / name` holding `config` as an HF `config.json` (all `launch/compile.py` reads)."""
    model_dir = tmp_path / name
    model_dir.mkdir(exist_ok=True)
    (model_dir / "config.json").write_text(json.dumps(config.to_hf()))
    return model_dir


def run_compile_launcher(config: str | Path, *flags: str, topology: str = "v5p:2x2x1",
                         timeout: int = 1800) -> subprocess.CompletedProcess:
    """`launch/compile.py --config=config --topology=topology *flags`, run from the repository root."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "XLA_FLAGS")}
    env["PYTHONPATH"] = REPO
    return subprocess.run([sys.executable, "launch/compile.py", f"--config={config}", f"--topology={topology}",
                           *flags], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
