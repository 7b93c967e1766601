"""The paper's token budget is a total sequence length (prompt + response, Table 3's caption:
128K): `sampling.max_total_tokens` caps a sample there, and the paper configs use it."""

import pytest

from configs.paper import (
    gpt_oss_20b,
    llama31_8b_instruct,
    qwen3_4b_instruct,
    qwen3_4b_thinking,
    qwen3_30b_a3b_instruct,
    qwen3_30b_a3b_thinking,
)
from ssd_jax.checkpoints.load import load_model
from ssd_jax.sampling import PromptTooLongError, Sampler, SampleRequest

PAPER_CONFIGS = {
    "qwen3_4b_instruct": qwen3_4b_instruct.get_config(),
    "qwen3_4b_thinking": qwen3_4b_thinking.get_config(),
    "llama31_8b_instruct": llama31_8b_instruct.get_config(),
    "qwen3_30b_a3b_instruct": qwen3_30b_a3b_instruct.get_config(),
    "qwen3_30b_a3b_thinking": qwen3_30b_a3b_thinking.get_config(),
    "gpt_oss_20b": gpt_oss_20b.get_config(),
}


def test_a_total_budget_leaves_each_sample_what_its_prompt_has_not_used():
    """The decode loop stops a sample at prompt + response = max_total_tokens (or at max_new_tokens
    if that comes first); the tiny random model never ends a sample on its own within these budgets."""
    loaded = load_model("tiny-random")
    capped = Sampler(loaded, max_new_tokens=10, batch_size=2, seed=0, max_total_tokens=66)
    near, short = "x" * 62, "x" * 20  # the byte tokenizer: one token per character
    requests = [SampleRequest("near", 0, near, 1.0, 0, 1.0), SampleRequest("short", 0, short, 1.0, 0, 1.0)]
    completions = {c.prompt_id: c for c in capped.generate(requests, progress=False)}
    assert {pid: (c.finish_reason, len(c.token_ids)) for pid, c in completions.items()} == {
        "near": ("length", 66 - 62),  # what the total budget leaves
        "short": ("length", 10),  # max_new_tokens still caps
    }
    with pytest.raises(PromptTooLongError, match="'long' has 66 tokens"):
        capped.generate([SampleRequest("long", 0, "x" * 66, 0.0, 0, 1.0)], progress=False)


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_sample_and_evaluate_within_128k_tokens_of_prompt_plus_response(name):
    config = PAPER_CONFIGS[name]
    assert config.sampling.max_total_tokens == config.eval.max_total_tokens == 131_072
    assert config.sampling.max_new_tokens <= 131_072 and config.eval.max_new_tokens <= 131_072
