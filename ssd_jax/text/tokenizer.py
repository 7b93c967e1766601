"""One tokenizer protocol over three sources: HF `tokenizer.json`, sentencepiece `.model`, GGUF vocabularies.

Every backend encodes special tokens written in the text (`<|im_start|>`, `<s>`, ...) as their single
ids, as HF transformers does, and never adds BOS unless asked: chat templates write their own.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import sentencepiece
import tokenizers
from tokenizers import AddedToken, decoders, models, pre_tokenizers

from ssd_jax.text.chat import ChatTemplate


@runtime_checkable
class Tokenizer(Protocol):
    """What the sampler, data pipeline and trainer need from a tokenizer."""

    vocab_size: int
    bos_id: int | None
    eos_id: int | None

    def encode(self, text: str, add_bos: bool = False) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_to_id(self, token: str) -> int | None: ...

    def id_to_token(self, token_id: int) -> str: ...


class HFTokenizer:
    """A `tokenizers.Tokenizer` (the backend of HF fast tokenizers) plus its special-token names.

    `special_tokens` maps HF's attribute names (`bos_token`, `eos_token`, `unk_token`, `pad_token`) to
    token strings; they are what `save_hf_tokenizer` writes and what chat templates see.
    """

    def __init__(self, backend: tokenizers.Tokenizer, special_tokens: dict[str, str | None]):
        self.backend = backend
        self.special_tokens = {name: token for name, token in special_tokens.items() if token is not None}
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)
        self.bos_id = self._special_id("bos_token")
        self.eos_id = self._special_id("eos_token")

    def _special_id(self, name: str) -> int | None:
        token = self.special_tokens.get(name)
        if token is None:
            return None
        token_id = self.backend.token_to_id(token)
        if token_id is None:
            raise ValueError(f"{name} {token!r} is not in the tokenizer's vocabulary.")
        return token_id

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        ids = self.backend.encode(text, add_special_tokens=False).ids
        return _with_bos(ids, self.bos_id) if add_bos else ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=False)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def id_to_token(self, token_id: int) -> str:
        return self.backend.id_to_token(token_id)


class SentencePieceTokenizer:
    """A sentencepiece `.model`; control pieces in the text (`<s>`, `</s>`) encode as their own ids."""

    def __init__(self, model_path: str | Path):
        self.processor = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
        self.vocab_size = self.processor.get_piece_size()
        self.bos_id = _non_negative(self.processor.bos_id())
        self.eos_id = _non_negative(self.processor.eos_id())
        self._control_ids = {
            self.processor.id_to_piece(i): i for i in range(self.vocab_size) if self.processor.is_control(i)
        }
        self._control_pieces = {token_id: piece for piece, token_id in self._control_ids.items()}
        longest_first = sorted(self._control_ids, key=len, reverse=True)
        alternatives = "|".join(map(re.escape, longest_first))
        self._control_pattern = re.compile(f"({alternatives})") if longest_first else None

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        pieces = self._control_pattern.split(text) if self._control_pattern else [text]
        ids: list[int] = []
        for index, piece in enumerate(pieces):
            if index % 2:
                ids.append(self._control_ids[piece])
            elif piece:
                ids.extend(self.processor.encode(piece))
        return _with_bos(ids, self.bos_id) if add_bos else ids

    def decode(self, ids: Sequence[int]) -> str:
        text, run = [], []
        for token_id in ids:
            if token_id in self._control_pieces:
                text.append(self.processor.decode(run))
                text.append(self._control_pieces[token_id])
                run = []
            else:
                run.append(token_id)
        text.append(self.processor.decode(run))
        return "".join(text)

    def token_to_id(self, token: str) -> int | None:
        token_id = self.processor.piece_to_id(token)
        is_unknown = token_id == self.processor.unk_id() and token != self.processor.id_to_piece(token_id)
        return None if is_unknown else token_id

    def id_to_token(self, token_id: int) -> str:
        return self.processor.id_to_piece(token_id)


def _with_bos(ids: list[int], bos_id: int | None) -> list[int]:
    if bos_id is None:
        raise ValueError("add_bos=True, but this tokenizer has no BOS token.")
    return [bos_id, *ids]


def _non_negative(token_id: int) -> int | None:
    return token_id if token_id >= 0 else None


# llama.cpp's CONTROL and USER_DEFINED values of `tokenizer.ggml.token_type`.
_CONTROL, _USER_DEFINED = 3, 4
# `tokenizer.ggml.pre` values whose HF tokenizer splits every digit off before GPT-2's byte-level
# regex (`Digits(individual_digits=True)`); llama.cpp likewise puts `\p{N}` first for them.
_SPLITS_EACH_DIGIT = frozenset({"smollm", "starcoder"})
_GPT2_PRE_TOKENIZER = frozenset({"default", "gpt2"})


def byte_level_bpe_tokenizer(
    tokens: Sequence[str],
    merges: Sequence[str],
    token_types: Sequence[int],
    pre_tokenizer: str | None,
    special_ids: dict[str, int | None],
) -> HFTokenizer:
    """A GPT-2-style byte-level BPE tokenizer from a vocabulary listing (a GGUF's `tokenizer.ggml.*`).

    `merges` are "left right" strings; `pre_tokenizer` is llama.cpp's `tokenizer.ggml.pre` name;
    `special_ids` maps `bos_token`/`eos_token`/`unk_token`/`pad_token` to ids. Control tokens become
    special added tokens and user-defined ones plain added tokens, as transformers' GGUF converter does.
    """
    alphabet = _byte_alphabet()
    byte_chars = set(alphabet.values())
    vocab = {
        token if set(token) <= byte_chars else "".join(alphabet[b] for b in token.encode("utf-8")): index
        for index, token in enumerate(tokens)
    }
    model = models.BPE(vocab=vocab, merges=[tuple(merge.split(" ", 1)) for merge in merges], fuse_unk=False)
    backend = tokenizers.Tokenizer(model)
    backend.pre_tokenizer = _byte_level_pre_tokenizer(pre_tokenizer)
    backend.decoder = decoders.ByteLevel()

    named = {name: tokens[token_id] for name, token_id in special_ids.items() if token_id is not None}
    typed = list(zip(tokens, token_types, strict=True))
    # A "control" token spelled outside the byte alphabet is a converter mislabel; transformers skips it too.
    control = [token for token, kind in typed if kind == _CONTROL and set(token) <= byte_chars]
    backend.add_special_tokens([_added(token, special=True) for token in dict.fromkeys([*control, *named.values()])])
    user_defined = [token for token, kind in typed if kind == _USER_DEFINED and token in vocab]
    backend.add_tokens([_added(token, special=False) for token in user_defined])
    return HFTokenizer(backend, named)


def _byte_level_pre_tokenizer(name: str | None) -> pre_tokenizers.PreTokenizer:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if name in _SPLITS_EACH_DIGIT:
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if name is not None and name not in _GPT2_PRE_TOKENIZER:
        warnings.warn(
            f"tokenizer.ggml.pre={name!r} has no pre-tokenizer here; splitting text with GPT-2's regex, which "
            "may differ from the model's own tokenizer. Load the model's HF tokenizer.json for exact ids.",
            stacklevel=3,
        )
    return byte_level


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character table that byte-level BPE vocabularies are spelled in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    unprintable = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(unprintable)}}


def _added(token: str, special: bool) -> AddedToken:
    return AddedToken(token, normalized=False, special=special)


_SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "pad_token")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The tokenizer at `path`: an HF model dir, a `tokenizer.json` or a sentencepiece `.model`.

    A `.gguf` file's tokenizer is `ssd_jax.checkpoints.gguf.read_gguf(path).tokenizer` (the GGUF
    reader builds it from its metadata, so this module needs nothing of checkpoints)."""
    path = Path(path)
    if path.is_dir():
        for name in ("tokenizer.json", "tokenizer.model"):
            if (path / name).is_file():
                return load_tokenizer(path / name)
        raise FileNotFoundError(f"{path} has neither tokenizer.json nor tokenizer.model; pass the tokenizer file.")
    if not path.is_file():
        raise FileNotFoundError(f"No tokenizer at {path}.")
    if path.suffix == ".json":
        backend = tokenizers.Tokenizer.from_file(str(path))
        return HFTokenizer(backend, _special_tokens_beside(path))
    if path.suffix == ".model":
        return SentencePieceTokenizer(path)
    if path.suffix == ".gguf":
        raise ValueError(f"{path} is a GGUF file: its tokenizer is ssd_jax.checkpoints.gguf.read_gguf(path).tokenizer")
    raise ValueError(f"Unknown tokenizer file {path}: expected tokenizer.json or a sentencepiece .model.")


def _special_tokens_beside(tokenizer_json: Path) -> dict[str, str | None]:
    """bos/eos/unk/pad token strings from the HF `special_tokens_map.json` / `tokenizer_config.json` beside it.

    Values are strings or serialized AddedTokens (`{"content": ...}`); `tokenizer_config.json` wins.
    """
    special: dict[str, str | None] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = tokenizer_json.parent / name
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        for key in _SPECIAL_TOKEN_NAMES:
            if key in config:
                value = config[key]
                special[key] = value.get("content") if isinstance(value, dict) else value
    return special


def save_hf_tokenizer(
    tokenizer: HFTokenizer,
    out_dir: str | Path,
    chat_template: ChatTemplate | str | None = None,
    model_max_length: int | None = None,
) -> None:
    """Write `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into `out_dir`.

    transformers' `AutoTokenizer.from_pretrained(out_dir)` then encodes exactly as `tokenizer` does,
    and `load_tokenizer` / `load_chat_template` read the directory back.
    """
    if not isinstance(tokenizer, HFTokenizer):
        kind = type(tokenizer).__name__
        raise TypeError(f"save_hf_tokenizer needs an HFTokenizer (from tokenizer.json or a GGUF), got {kind}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.backend.save(str(out_dir / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **tokenizer.special_tokens,
        "clean_up_tokenization_spaces": False,
    }
    if model_max_length is not None:
        config["model_max_length"] = model_max_length
    if chat_template is not None:
        config["chat_template"] = chat_template.template if isinstance(chat_template, ChatTemplate) else chat_template
    _write_json(out_dir / "tokenizer_config.json", config)
    _write_json(out_dir / "special_tokens_map.json", tokenizer.special_tokens)


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
