"""Chat-template keyword arguments from the config reach every rendering: sampling prompts
(`prompts.chat_template_kwargs`), the training rows rendered from those samples, and evaluation
prompts (`eval.chat_template_kwargs`); the GPT-OSS paper config sets reasoning effort "high"."""

import types
from pathlib import Path

import numpy as np

from configs.paper import gpt_oss_20b
from ssd_jax.checkpoints import tiny
from ssd_jax.data.examples import ExampleTokenizer
from ssd_jax.problems.types import Problem
from ssd_jax.stages import sample
from ssd_jax.text.chat import ChatTemplate
from ssd_jax.training.settings import TrainSettings

GPT_OSS = ChatTemplate((Path(__file__).parent / "data/chat_templates/gpt_oss_20b_excerpt.jinja").read_text())
HIGH = {"reasoning_effort": "high"}


def test_the_gpt_oss_paper_config_asks_for_high_reasoning_effort_everywhere(tmp_path):
    config = gpt_oss_20b.get_config()
    assert dict(config.prompts.chat_template_kwargs) == dict(config.eval.chat_template_kwargs) == HIGH
    config.workdir = str(tmp_path)
    assert TrainSettings.from_config(config).data.chat_template_kwargs == HIGH


def test_sampling_prompts_are_rendered_with_the_configured_keyword_arguments():
    loaded = types.SimpleNamespace(chat_template=GPT_OSS, ref="gpt-oss-excerpt")
    sampler = types.SimpleNamespace(prompt_token_ids=lambda text: list(text), fits=lambda n: True, context=10**6)
    problems = [Problem(id="p", statement="Print 1.")]
    (high,), _ = sample._render(problems, loaded, sampler, "", HIGH)
    (default,), _ = sample._render(problems, loaded, sampler, "", {})
    assert "Reasoning: high\n" in high.text and "Reasoning: medium\n" in default.text
    assert high.text.endswith("<|start|>user<|message|>" + high.messages[-1]["content"] + "<|end|><|start|>assistant")


def test_training_rows_render_the_prompt_as_it_was_sampled():
    tokenizer = tiny.tiny_tokenizer()
    messages = [{"role": "user", "content": "Print 1."}]
    for kwargs, effort in ((HIGH, "high"), ({}, "medium")):
        tokens, mask = ExampleTokenizer(tokenizer, GPT_OSS, kwargs).tokens_and_mask(messages, "print(1)")
        prompt = tokenizer.decode(tokens[np.asarray(mask) == 0])
        assert f"Reasoning: {effort}\n" in prompt
        assert prompt == GPT_OSS.render(messages, add_generation_prompt=True, **kwargs)


def test_the_training_stage_settings_hold_the_template_arguments_even_for_samples_from_elsewhere():
    """Rows rendered with other template arguments are other training data: a resume under them is
    refused. Packed row counts and checkpoint-model exports change only how the run goes."""
    from configs import base
    from ssd_jax.stages import train

    config = base.get_config()
    config.data.samples_dir = "/elsewhere/samples"  # the sample stage's settings do not count then
    settings = train.fingerprint(config)
    config.prompts.chat_template_kwargs = HIGH
    assert train.fingerprint(config) != settings
    execution = base.get_config()
    execution.data.samples_dir = "/elsewhere/samples"
    execution.data.packed_rows, execution.train.checkpoint_models = 8, True
    assert train.fingerprint(execution) == settings
