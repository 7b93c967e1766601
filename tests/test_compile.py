"""`launch/compile.py` compiles a config's programs for a real TPU topology on this CPU host.

The launcher runs as a subprocess (its real exit status and output): a tiny architecture on a
v5p:2x2x1 slice (4 chips) fits and prints one row per program; the same config with a row
length whose dense attention scores cannot fit exits non-zero naming the training step.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ssd_jax.models import ModelConfig

try:
    import libtpu  # noqa: F401
except ImportError:
    libtpu = None

pytestmark = pytest.mark.skipif(libtpu is None, reason="libtpu is not installed (pip install -e '.[test]'), "
                                                        "so nothing can be compiled for a TPU topology")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ModelConfig(family="qwen3", vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2,
                   num_heads=4, num_kv_heads=4, head_dim=32, qk_norm=True)


def _config_file(tmp_path, **fields) -> str:
    model_dir = tmp_path / "tiny"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "config.json").write_text(json.dumps(TINY.to_hf()))
    settings = "\n".join(f"    c.{name} = {value!r}" for name, value in fields.items())
    path = tmp_path / "config.py"
    path.write_text(textwrap.dedent(f"""
        from configs import base
        def get_config():
            c = base.get_config()
            c.model = {str(model_dir)!r}
            c.dtype = "bfloat16"
            c.mesh.data, c.mesh.fsdp, c.mesh.model = 1, 2, 2
            c.data.max_length = 1024
            c.train.global_batch, c.train.micro_batch = 4, 2
            c.train.remat = "block"
            c.sampling.batch_size, c.sampling.max_new_tokens = 4, 256
            c.eval.batch_size, c.eval.max_new_tokens = 4, 256
        """) + settings + "\n    return c\n")
    return str(path)


def _compile(config: str, *flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "XLA_FLAGS")}
    env["PYTHONPATH"] = REPO
    return subprocess.run([sys.executable, "launch/compile.py", f"--config={config}", "--topology=v5p:2x2x1",
                           "--max_prompt_tokens=128", *flags], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


def test_small_config_fits_a_small_slice(tmp_path):
    result = _compile(_config_file(tmp_path))
    print(result.stdout)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "v5p:2x2x1: 4 chips" in result.stdout
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.split()}
    for program in ("train_step", "sample_prefill", "sample_decode", "eval_prefill", "eval_decode"):
        assert program in rows, result.stdout
        assert rows[program][1:3] == ["v5p", "4"]
        assert rows[program][8] == "yes"


def test_program_that_does_not_fit_is_named(tmp_path):
    # Reference attention at 256k tokens: float32 scores [4 heads, 256k, 256k] = 1 TiB per row.
    config = _config_file(tmp_path, **{"data.max_length": 262144, "train.attention": "reference",
                                       "train.micro_batch": 4, "train.global_batch": 4})
    result = _compile(config, "--programs=train_step")
    print(result.stdout)
    assert result.returncode != 0
    assert "does not fit in HBM: train_step" in result.stderr
