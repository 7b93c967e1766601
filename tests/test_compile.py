"""`launch/compile.py` compiles a config's programs for a real TPU topology on this CPU host.

The launcher runs as a subprocess (its real exit status and output): a tiny architecture on a
v5p:2x2x1 slice (4 chips) fits and prints one row per program, the paged sampler's cache in its
arguments as large as the configured page pool; the same config exits non-zero naming the
program when the training step's dense attention scores, or the sampler's page pool, cannot fit.
"""

import subprocess
import textwrap

import pytest

from ssd_jax.models import ModelConfig
from tpu_topology import requires_libtpu, run_compile_launcher, write_model_dir

pytestmark = requires_libtpu

TINY = ModelConfig(family="qwen3", vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2,
                   num_heads=4, num_kv_heads=4, head_dim=32, qk_norm=True)


def _config_file(tmp_path, **fields) -> str:
    model_dir = write_model_dir(tmp_path, "tiny", TINY)
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
    return run_compile_launcher(config, "--max_prompt_tokens=128", *flags)


def _rows(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in stdout.splitlines() if len(line.split()) == 11}


def _kv_cache_gib(pages: int, page_size: int = 16) -> float:
    """The paged cache's bytes per chip by hand: every layer's K and V pages, bfloat16."""
    return TINY.num_layers * (pages + 1) * page_size * 2 * TINY.num_kv_heads * TINY.head_dim * 2 / 2**30


def test_small_config_fits_a_small_slice(tmp_path):
    # Stage 1 samples with one replica per chip and a 200,000-page pool per replica (3.05 GiB).
    # The evaluator's programs are the same sampler's, compiled for its own section: left out to save time.
    programs = ("train_step", "sample_prefill", "sample_decode")
    result = _compile(_config_file(tmp_path, **{"sampling.kv_cache_pages": 200_000}), f"--programs={','.join(programs)}")
    print(result.stdout)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "v5p:2x2x1: 4 chips" in result.stdout
    rows = _rows(result.stdout)
    for program in programs:
        assert program in rows, result.stdout
        assert rows[program][1:3] == ["v5p", "4"]
        assert rows[program][7:9] == ["95.00", "yes"]
        assert float(rows[program][9]) > 0  # TFLOP per chip
    assert "model FLOPs of train_step" in result.stdout
    for program in ("sample_prefill", "sample_decode"):  # the cache is an argument (donated, updated in place)
        assert float(rows[program][3]) == pytest.approx(_kv_cache_gib(200_000), abs=0.02)


def test_program_that_does_not_fit_is_named(tmp_path):
    # Reference attention at 256k tokens: float32 scores [4 heads, 256k, 256k] = 1 TiB per row.
    config = _config_file(tmp_path, **{"data.max_length": 262144, "train.attention": "reference",
                                       "train.micro_batch": 4, "train.global_batch": 4})
    result = _compile(config, "--programs=train_step")
    print(result.stdout)
    assert result.returncode != 0
    assert "does not fit in HBM: train_step" in result.stderr


def test_sampler_pool_that_does_not_fit_is_named(tmp_path):
    # 7,000,000 pages per replica: a 107 GiB cache per chip, more than a v5p chip's 95 GiB.
    config = _config_file(tmp_path, **{"sampling.kv_cache_pages": 7_000_000})
    result = _compile(config, "--programs=sample_decode")
    print(result.stdout)
    assert result.returncode != 0
    assert float(_rows(result.stdout)["sample_decode"][3]) == pytest.approx(_kv_cache_gib(7_000_000), abs=0.02)
    assert "does not fit in HBM: sample_decode" in result.stderr
