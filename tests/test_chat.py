"""Chat templates: rendering and assistant spans checked against transformers on SmolLM2's real template."""

import datetime
import json

import jinja2
import pytest
import transformers
from transformers.utils.chat_template_utils import render_jinja_template

from ssd_jax.checkpoints.builtin import resolve_builtin
from ssd_jax.text.chat import ChatTemplate, load_chat_template

SYSTEM = {"role": "system", "content": "Answer with Python code in a markdown block."}
USER = {"role": "user", "content": "Write add(a, b).\n  Keep it <short> & \"typed\"."}
ASSISTANT = {"role": "assistant", "content": "```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```\n"}
FOLLOW_UP = {"role": "user", "content": "Now subtract."}
SECOND_ANSWER = {"role": "assistant", "content": "def sub(a, b):\n    return a - b"}

# SmolLM2's template with HF's `{% generation %}` markup around each assistant response + <|im_end|>.
MARKED_SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def hf_tokenizer():
    path = resolve_builtin("smollm2-135m-instruct")
    return transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


@pytest.fixture(scope="module")
def template(hf_tokenizer):
    return ChatTemplate(hf_tokenizer.chat_template, hf_tokenizer.bos_token, hf_tokenizer.eos_token)


@pytest.mark.parametrize("with_system", [False, True])
@pytest.mark.parametrize("add_generation_prompt", [False, True])
@pytest.mark.parametrize("turns", [1, 2, 4])
def test_render_matches_transformers(hf_tokenizer, template, with_system, add_generation_prompt, turns):
    messages = ([SYSTEM] if with_system else []) + [USER, ASSISTANT, FOLLOW_UP, SECOND_ANSWER][:turns]
    expected = hf_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    assert template.render(messages, add_generation_prompt=add_generation_prompt) == expected


def test_default_system_prompt_and_no_bos(template):
    text = template.render([USER])
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face")
    assert text.endswith("<|im_start|>assistant\n")


def test_assistant_spans_match_transformers_generation_markup(template):
    messages = [SYSTEM, USER, ASSISTANT, FOLLOW_UP, SECOND_ANSWER]
    text, spans = template.render_with_assistant_spans(messages)
    (marked_text,), (marked_spans,) = render_jinja_template(
        conversations=[messages], chat_template=MARKED_SMOLLM2, return_assistant_tokens_mask=True
    )
    assert text == marked_text
    assert spans == marked_spans
    assert [text[start:end] for start, end in spans] == [
        ASSISTANT["content"] + "<|im_end|>", SECOND_ANSWER["content"] + "<|im_end|>"]


def test_assistant_span_starts_where_generation_starts(template):
    messages = [USER, ASSISTANT]
    text, [(start, end)] = template.render_with_assistant_spans(messages)
    assert text[:start] == template.render([USER], add_generation_prompt=True)
    assert end == len(text.rstrip())
    assert template.end_of_turn_text == "<|im_end|>"


def test_spans_refuse_templates_that_rewrite_history():
    # Drops every assistant message but the last, as some reasoning templates do with their thinking.
    rewriting = ChatTemplate(
        "{% for m in messages %}{% if m.role != 'assistant' or loop.last %}[{{ m.role }}]{{ m.content }}"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    with pytest.raises(ValueError, match="message 1"):
        rewriting.render_with_assistant_spans([USER, ASSISTANT, FOLLOW_UP, SECOND_ANSWER])


FEATURES = (
    "{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{{ m | tojson }}|{% endfor %}"
    "{% set ns = namespace(n=0) %}{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}"
    "{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}|{{ bos_token }}{{ eos_token }}|{{ strftime_now('%Y') }}"
    "|{{ tools is none }}{{ documents is none }}"
)


def test_hf_jinja_features_render_as_transformers_does():
    messages = [{"role": "user", "content": "é ✓ </script>"}, USER, SYSTEM]
    ours = ChatTemplate(FEATURES, bos_token="<s>", eos_token="</s>").render(messages, add_generation_prompt=False)
    (expected,), _ = render_jinja_template(
        conversations=[messages], chat_template=FEATURES, bos_token="<s>", eos_token="</s>"
    )
    assert ours == expected
    assert '"é ✓ </script>"' in ours and str(datetime.date.today().year) in ours


def test_raise_exception_and_sandbox():
    failing = ChatTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(jinja2.exceptions.TemplateError, match="roles must alternate"):
        failing.render([USER])
    mutating = ChatTemplate("{{ messages.append(messages[0]) }}")
    with pytest.raises(jinja2.exceptions.SecurityError):
        mutating.render([USER])


def test_load_chat_template_reads_hf_files(tmp_path):
    assert load_chat_template(tmp_path) is None
    config = {"bos_token": {"content": "<s>"}, "eos_token": "</s>", "chat_template": "A{{ bos_token }}"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert load_chat_template(tmp_path) == ChatTemplate("A{{ bos_token }}", "<s>", "</s>")
    assert load_chat_template(tmp_path).render([USER]) == "A<s>"

    config["chat_template"] = [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert load_chat_template(tmp_path).template == "D"

    (tmp_path / "chat_template.jinja").write_text("J{{ eos_token }}")
    assert load_chat_template(tmp_path).render([USER]) == "J</s>"
