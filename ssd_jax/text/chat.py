"""A checkpoint's Jinja chat template, rendered with HF transformers' semantics.

The environment matches `transformers.utils.chat_template_utils`: a sandboxed, immutable Jinja
environment with `trim_blocks`, `lstrip_blocks`, `loopcontrols`, `raise_exception`, `strftime_now`
and a `tojson` that does not escape HTML. `{% generation %}` blocks (used by HF to mark assistant
text) render their body.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

_PROBE_CONTENT = "\x00assistant-content\x00"


class _GenerationBlock(Extension):
    """`{% generation %}...{% endgeneration %}`: renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.Scope(body).set_lineno(lineno)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None, sort_keys=False) -> str:
    """Jinja's `tojson` escapes HTML characters; chat templates expect plain JSON (as in transformers)."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(date_format: str) -> str:
    return datetime.now().strftime(date_format)


@functools.lru_cache(maxsize=16)
def _compile(template: str) -> jinja2.Template:
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationBlock, loopcontrols]
    )
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = _strftime_now
    return environment.from_string(template)


@dataclass(frozen=True)
class ChatTemplate:
    """A chat template and the special-token strings it may reference (`bos_token`, `eos_token`)."""

    template: str
    bos_token: str = ""
    eos_token: str = ""

    def render(self, messages: Sequence[dict], add_generation_prompt: bool = True, **template_kwargs: Any) -> str:
        """The conversation as the model sees it; `add_generation_prompt` opens an assistant turn.

        Like HF's `apply_chat_template`, message keys whose value is None are dropped first.
        """
        plain_messages = [{key: value for key, value in message.items() if value is not None} for message in messages]
        context = {"bos_token": self.bos_token, "eos_token": self.eos_token, "tools": None, "documents": None}
        context.update(template_kwargs)
        return _compile(self.template).render(
            messages=plain_messages, add_generation_prompt=add_generation_prompt, **context
        )

    def render_with_assistant_spans(
        self, messages: Sequence[dict], **template_kwargs: Any
    ) -> tuple[str, list[tuple[int, int]]]:
        """The full conversation and, per assistant message, the `[start, end)` characters to train on.

        A span starts where generation would start (after the generation prompt) and ends after the
        turn's closing text (e.g. `<|im_end|>`), excluding whitespace the template adds after it.
        Found by rendering prefixes, so it needs no markup in the template; raises if the template
        renders a shorter conversation as something other than a prefix of the full one.
        """
        text = self.render(messages, add_generation_prompt=False, **template_kwargs)
        spans = []
        for index, message in enumerate(messages):
            if message.get("role") != "assistant":
                continue
            prompt = self.render(messages[:index], add_generation_prompt=True, **template_kwargs)
            turn = self.render(messages[: index + 1], add_generation_prompt=False, **template_kwargs).rstrip()
            if not (text.startswith(prompt) and text.startswith(turn) and len(turn) > len(prompt)):
                raise ValueError(
                    f"Chat template does not render message {index} (assistant) as a continuation of the messages "
                    "before it, so its training span cannot be located. Train on a conversation that ends with "
                    "this message instead."
                )
            spans.append((len(prompt), len(turn)))
        return text, spans

    @functools.cached_property
    def end_of_turn_text(self) -> str:
        """The text that closes an assistant turn (e.g. `<|im_end|>`), without trailing whitespace."""
        probe = [{"role": "user", "content": "?"}, {"role": "assistant", "content": _PROBE_CONTENT}]
        rendered = self.render(probe, add_generation_prompt=False)
        if _PROBE_CONTENT not in rendered:
            raise ValueError("Chat template does not render assistant message content verbatim.")
        return rendered.split(_PROBE_CONTENT, 1)[1].rstrip()


def load_chat_template(hf_dir: str | Path) -> ChatTemplate | None:
    """The chat template of an HF model dir (`chat_template.jinja` or `tokenizer_config.json`), or None."""
    hf_dir = Path(hf_dir)
    config_path = hf_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    jinja_path = hf_dir / "chat_template.jinja"
    template = jinja_path.read_text(encoding="utf-8") if jinja_path.is_file() else _config_template(config, config_path)
    if template is None:
        return None
    bos_token, eos_token = _token_text(config.get("bos_token")), _token_text(config.get("eos_token"))
    return ChatTemplate(template, bos_token=bos_token, eos_token=eos_token)


def _config_template(config: dict, config_path: Path) -> str | None:
    """`chat_template` as a string, or the one named "default" in HF's list-of-templates form."""
    template = config.get("chat_template")
    if isinstance(template, list):
        named = {entry["name"]: entry["template"] for entry in template}
        if "default" not in named:
            raise ValueError(f"{config_path}: chat_template lists {sorted(named)} but no 'default' template.")
        return named["default"]
    return template


def _token_text(value: str | dict | None) -> str:
    if isinstance(value, dict):
        return value.get("content", "")
    return value or ""
