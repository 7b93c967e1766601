"""Tokenizers: the SmolLM2 GGUF vocabulary vs transformers, HF export round trip, sentencepiece backend."""

import inspect
import json
import json.decoder
import textwrap

import pytest
import regex
import sentencepiece
import transformers

from ssd_jax.checkpoints.builtin import resolve_builtin
from ssd_jax.checkpoints.gguf import read_gguf
from ssd_jax.text.chat import ChatTemplate
from ssd_jax.text.tokenizer import (
    HFTokenizer,
    SentencePieceTokenizer,
    byte_level_bpe_tokenizer,
    load_tokenizer,
    save_hf_tokenizer,
)

SOURCES = [inspect.getsource(textwrap), inspect.getsource(json.decoder)]
DIGITS_AFTER_WHITESPACE = "values = [\n    10,\n    200,\n]  # 3 items\n\t42  7\n"
UNICODE = "héllo wörld ✓ 日本語 🙂 — “quotes”\r\n\ttab"
MESSAGES = [
    {"role": "user", "content": "Write a function that reverses a string."},
    {"role": "assistant", "content": "```python\ndef reverse(text):\n    return text[::-1]\n```"},
    {"role": "user", "content": "Now make it <safe> & typed."},
]


@pytest.fixture(scope="module")
def gguf_path():
    return resolve_builtin("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def ours(gguf_path):
    return read_gguf(gguf_path).tokenizer


@pytest.fixture(scope="module")
def hf(gguf_path):
    return transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)


def reference_ids(hf_tokenizer, text: str) -> list[int]:
    """transformers' ids with the text cut around every digit first.

    SmolLM2's own tokenizer.json and llama.cpp's `smollm` pre-tokenizer split each digit off before the
    GPT-2 regex (its vocabulary has no token containing a digit besides the ten digits). transformers'
    GGUF converter skips that step, which only changes whitespace runs right before a digit.
    """
    pieces = [piece for piece in regex.split(r"(\p{N})", text) if piece]
    return [token for piece in pieces for token in hf_tokenizer.encode(piece, add_special_tokens=False)]


@pytest.mark.parametrize(
    "text", SOURCES + [DIGITS_AFTER_WHITESPACE, UNICODE], ids=["textwrap", "json", "digits", "unicode"]
)
def test_gguf_tokenizer_matches_transformers(ours, hf, text):
    assert ours.encode(text) == reference_ids(hf, text)


def test_python_source_ids_equal_transformers_exactly(ours, hf):
    for source in SOURCES:
        assert ours.encode(source) == hf.encode(source, add_special_tokens=False)


def test_each_digit_is_its_own_token(ours):
    assert ours.encode("12345") == [ours.token_to_id(digit) for digit in "12345"]
    assert ours.encode("  45") == [ours.token_to_id("ĠĠ"), ours.token_to_id("4"), ours.token_to_id("5")]


def test_chat_prompt_special_tokens_are_single_ids(ours, hf):
    expected = hf.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True)["input_ids"]
    prompt = hf.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    ids = ours.encode(prompt)
    assert ids == list(expected)
    assert ids.count(ours.token_to_id("<|im_start|>")) == len(MESSAGES) + 2  # + default system + generation prompt
    assert ids.count(ours.eos_id) == len(MESSAGES) + 1


def test_special_ids_and_vocabulary(ours):
    assert (ours.vocab_size, ours.bos_id, ours.eos_id) == (49152, 1, 2)
    assert [ours.id_to_token(i) for i in (0, 1, 2)] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert ours.token_to_id("<|im_end|>") == 2 and ours.token_to_id("no such token") is None
    assert ours.encode("hi", add_bos=True) == [1, *ours.encode("hi")]


@pytest.mark.parametrize("text", SOURCES + [DIGITS_AFTER_WHITESPACE, UNICODE, "<|im_start|>user\n hi <|im_end|>\n"])
def test_decode_inverts_encode(ours, text):
    assert ours.decode(ours.encode(text)) == text


def test_hf_export_round_trip(ours, tmp_path):
    template = ChatTemplate(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )
    save_hf_tokenizer(ours, tmp_path, chat_template=template)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))

    exported = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for text in SOURCES + [DIGITS_AFTER_WHITESPACE, UNICODE, template.render(MESSAGES)]:
        assert exported.encode(text, add_special_tokens=False) == ours.encode(text)
        assert exported(text)["input_ids"] == ours.encode(text)
    assert (exported.bos_token, exported.eos_token, exported.pad_token, exported.unk_token) == (
        "<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>")
    assert exported.apply_chat_template(MESSAGES, tokenize=False) == template.render(MESSAGES)

    reloaded = load_tokenizer(tmp_path)
    assert isinstance(reloaded, HFTokenizer)
    assert (reloaded.bos_id, reloaded.eos_id, reloaded.vocab_size) == (1, 2, 49152)
    assert reloaded.encode(DIGITS_AFTER_WHITESPACE) == ours.encode(DIGITS_AFTER_WHITESPACE)


def test_sentencepiece_model_with_control_tokens(tmp_path):
    lines = [line for line in SOURCES[0].splitlines() if line.strip()]
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(tmp_path / "spm"), vocab_size=300, model_type="bpe",
        bos_id=1, eos_id=2, unk_id=0, minloglevel=2,
    )
    processor = sentencepiece.SentencePieceProcessor(model_file=str(tmp_path / "spm.model"))
    tokenizer = load_tokenizer(tmp_path / "spm.model")
    assert isinstance(tokenizer, SentencePieceTokenizer)

    text = "def wrap(text, width=70):"
    assert tokenizer.encode(text) == processor.encode(text)
    assert tokenizer.encode(f"<s>{text}</s>") == [1, *processor.encode(text), 2]
    assert tokenizer.encode(text, add_bos=True) == [1, *processor.encode(text)]
    assert tokenizer.decode(tokenizer.encode(f"<s>{text}</s>")) == f"<s>{text}</s>"
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.vocab_size) == (1, 2, 300)
    assert tokenizer.token_to_id("</s>") == 2 and tokenizer.token_to_id("no such piece") is None


def test_unknown_pre_tokenizer_warns():
    tokens = ["a", "b", "ab"]
    with pytest.warns(UserWarning, match="tokenizer.ggml.pre='qwen2'"):
        tokenizer = byte_level_bpe_tokenizer(tokens, ["a b"], [1, 1, 1], "qwen2", {})
    assert tokenizer.encode("abab") == [2, 2]


def test_load_tokenizer_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither tokenizer.json nor tokenizer.model"):
        load_tokenizer(tmp_path)
    (tmp_path / "vocab.txt").write_text("a\n")
    with pytest.raises(ValueError, match="vocab.txt"):
        load_tokenizer(tmp_path / "vocab.txt")
