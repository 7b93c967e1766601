"""Samples that hit their token budget: `data.truncated="drop"` (the default) keeps them out of
training, so Qwen3-Thinking-2507's chat template never turns a cut-off thinking trace into a
trained span that opens with a closed, empty thinking block."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from sample_shards import make_record
from settings_from_config import data_settings

from ssd_jax.checkpoints import tiny
from ssd_jax.data.examples import ExampleTokenizer
from ssd_jax.data.filtering import filter_completions
from ssd_jax.data.pipeline import prepare_data
from ssd_jax.data.records import ShardWriter, process_shard_name
from ssd_jax.text.chat import ChatTemplate

# The real template (source: tests/data/chat_templates/README.md).
QWEN3_THINKING = ChatTemplate((Path(__file__).parent / "data/chat_templates/qwen3_thinking_2507.jinja").read_text())
EMPTY_CLOSED_THINKING = "\n</think>"  # what follows the generation prompt's "<think>\n" when no trace is kept


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """Four finished thinking samples and three cut off mid-thought (finish reason `length`)."""
    finished = [f"Let me think about {i}.\nSquare it.\n</think>\n\n```python\nprint({i} ** 2)\n```" for i in range(4)]
    cut_off = [f"Let me think about {i}.\nFirst, the input is read line by line, then" for i in range(4, 7)]
    directory = tmp_path_factory.mktemp("samples")
    with ShardWriter(directory, process_shard_name(0)) as writer:
        for index, completion in enumerate(finished + cut_off):
            reason = "length" if index >= 4 else "eos"
            writer.write(dataclasses.replace(make_record(index, completion), finish_reason=reason))
    return directory


def _trained_spans(directory, truncated: str) -> tuple[list[str], dict[str, int]]:
    examples = ExampleTokenizer(tiny.tiny_tokenizer(), QWEN3_THINKING)
    settings = data_settings(directory, max_length=1024, truncated=truncated)
    prepared = prepare_data(settings, examples)
    spans = []
    for index in prepared.indices:
        tokens, mask = examples.record_tokens_and_mask(prepared.source[index])
        spans.append(examples.tokenizer.decode(tokens[np.asarray(mask) == 1]))
    return spans, prepared.counts


def test_dropped_truncated_samples_leave_no_span_opening_with_a_closed_empty_thinking_block(samples):
    spans, counts = _trained_spans(samples, "drop")
    assert counts["dropped_truncated"] == 3 and counts["examples"] == 4
    assert len(spans) == 4
    for span in spans:
        assert not span.startswith(EMPTY_CLOSED_THINKING), span
        assert span.startswith("Let me think about")


def test_kept_truncated_samples_are_what_teaches_the_model_to_close_its_thinking_at_once(samples):
    spans, counts = _trained_spans(samples, "keep")
    assert "dropped_truncated" not in counts and counts["examples"] == 7
    assert sum(span.startswith(EMPTY_CLOSED_THINKING + "\n\nLet me think about") for span in spans) == 3


def test_truncated_policy_is_applied_before_the_filter_rule_and_named_when_wrong():
    completions = ["a\nb", "c\nd", ""]
    result = filter_completions(completions, "minimal", finish_reasons=["eos", "length", "eos"], truncated="drop")
    assert result.kept == [0] and result.dropped == {"truncated": 1, "empty": 1, "single_line": 0}
    assert filter_completions(completions, "none", finish_reasons=["length"] * 3, truncated="drop").kept == []
    with pytest.raises(ValueError, match="config.data.truncated='cut'"):
        filter_completions(completions, "minimal", finish_reasons=["eos"] * 3, truncated="cut")
