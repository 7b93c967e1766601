"""`launch/compile.py` compiles a small mixture-of-experts config (gpt-oss-style: experts,
sinks, sliding windows) for a real TPU topology, on a mesh with an expert axis, and it fits.

The launcher runs as a subprocess (its real exit status and output) on a v5p:2x2x1 slice
(4 chips) with fsdp 1 × expert 2 × model 2, the sampler on expert 2 × model 2. The sampler's and
evaluator's programs hold the expert weights split over the expert axis, in the compute dtype.
"""

import textwrap

from ssd_jax.models import ModelConfig
from tpu_topology import requires_libtpu, run_compile_launcher, write_model_dir

TINY_MOE = ModelConfig(family="gpt_oss", vocab_size=512, hidden_size=64, intermediate_size=64, num_layers=2,
                       num_heads=4, num_kv_heads=2, head_dim=32, num_experts=8, num_experts_per_tok=2,
                       moe_intermediate_size=64, attention_bias=True, attention_sinks=True, layer_windows=(128, 0),
                       swiglu_limit=7.0, router_aux_loss_coef=0.01)


@requires_libtpu
def test_small_moe_config_fits_a_small_slice_with_an_expert_axis(tmp_path):
    model_dir = write_model_dir(tmp_path, "tiny_moe", TINY_MOE)
    config = tmp_path / "config.py"
    config.write_text(textwrap.dedent(f"""
        from configs import base
        def get_config():
            c = base.get_config()
            c.model = {str(model_dir)!r}
            c.dtype = "bfloat16"
            c.mesh.data, c.mesh.fsdp, c.mesh.expert, c.mesh.model = 1, 1, 2, 2
            c.data.max_length = 1024
            c.train.global_batch, c.train.micro_batch = 4, 2
            c.train.remat = "block"
            c.sampling.batch_size, c.sampling.max_new_tokens = 4, 64
            c.sampling.expert_parallel, c.sampling.model_parallel = 2, 2
            c.eval.batch_size, c.eval.max_new_tokens = 4, 64
            return c
        """))
    result = run_compile_launcher(config, "--max_prompt_tokens=64", "--programs=train_step,sample_prefill,eval_decode",
                                  timeout=900)
    print(result.stdout)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.split()}
    for program in ("train_step", "sample_prefill", "eval_decode"):
        assert rows[program][1:3] == ["v5p", "4"] and rows[program][8] == "yes", result.stdout


def test_sampler_programs_split_the_experts_in_the_compute_dtype(tmp_path):
    """The programs `launch/compile.py` measures for sampling and evaluation take the expert
    weights split over `sampling.expert_parallel` devices, in `dtype` (not float32 masters)."""
    import jax
    from configs import base
    from ssd_jax import compiled_fit

    model_dir = write_model_dir(tmp_path, "tiny_moe", TINY_MOE)
    c = base.get_config()
    c.model, c.dtype, c.param_dtype = str(model_dir), "bfloat16", "float32"
    c.sampling.expert_parallel, c.sampling.batch_size, c.eval.batch_size = 4, 8, 8
    targets = compiled_fit.compile_targets(c, jax.devices(), max_prompt_tokens=32, max_total_tokens=64)
    for program in ("sample_prefill", "sample_decode", "eval_prefill", "eval_decode"):
        params = targets[program][1][0]
        gate = params["blocks"]["expert_gate"].get_value()
        assert gate.dtype == jax.numpy.bfloat16, program
        assert gate.sharding.spec[1] == "expert" and gate.sharding.mesh.shape["expert"] == 4, program
