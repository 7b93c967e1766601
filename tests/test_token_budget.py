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
    "qwen3_30b_a3b_instruct": qwen3_30b_a3b_instruct.recipe(),
    "qwen3_30b_a3b_thinking": qwen3_30b_a3b_thinking.recipe(),
    "gpt_oss_20b": gpt_oss_20b.recipe(),
}


def test_a_total_budget_leaves_each_row_what_its_prompt_has_not_used():
    """The row budget is what the decode loop honours (the sampler tests run it to `length`)."""
    loaded = load_model("tiny-random")
    sampler = Sampler(loaded, max_new_tokens=10, batch_size=1, seed=0, max_total_tokens=66)
    prompt = "x" * 62  # the byte tokenizer: one token per character
    assert sampler.row(SampleRequest("p", 0, prompt, 1.0, 0, 1.0)).budget == 66 - 62
    assert sampler.row(SampleRequest("short", 0, "x" * 20, 1.0, 0, 1.0)).budget == 10  # max_new_tokens still caps
    with pytest.raises(PromptTooLongError, match="'long' has 66 tokens"):
        sampler.row(SampleRequest("long", 0, "x" * 66, 0.0, 0, 1.0))
    uncapped = Sampler(loaded, max_new_tokens=10, batch_size=1, seed=0)
    assert uncapped.row(SampleRequest("p", 0, prompt, 1.0, 0, 1.0)).budget == 10


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_configs_sample_and_evaluate_within_128k_tokens_of_prompt_plus_response(name):
    config = PAPER_CONFIGS[name]
    assert config.sampling.max_total_tokens == config.eval.max_total_tokens == 131_072
    assert config.sampling.max_new_tokens <= 131_072 and config.eval.max_new_tokens <= 131_072
