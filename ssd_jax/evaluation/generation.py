"""What the evaluator asks of a model (`GenerateFn`: requests in, one `Generated` each out), and
the default answerer, ssd-jax's own sampler (`sampler_generate_fn`). Tests pass canned responses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jax


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """One sample to draw: chat `messages` for problem `prompt_id`, sample number `sample_index`."""

    prompt_id: str
    sample_index: int
    messages: tuple[dict, ...]
    temperature: float
    top_k: int
    top_p: float
    adaptive: float = 0.0  # adaptive-temperature strength (ssd_jax.sampling.adaptive), 0 = off


@dataclasses.dataclass(frozen=True)
class Generated:
    """A model's response to one request."""

    text: str
    finish_reason: str = ""
    num_tokens: int = 0


GenerateFn = Callable[[str, Sequence[GenerationRequest]], Sequence[Generated]]


def sampler_generate_fn(*, max_new_tokens: int, batch_size: int, seed: int, dtype: str = "float32",
                        mesh: "jax.sharding.Mesh | None" = None, max_total_tokens: int | None = None,
                        chat_template_kwargs: Mapping | None = None, cache: Mapping | None = None) -> GenerateFn:
    """A GenerateFn backed by `ssd_jax.sampling.sampler.Sampler` (imported on first use).

    The model's chat template renders the messages (with `chat_template_kwargs`); a sample ends
    after `max_new_tokens` or when prompt + response reach `max_total_tokens`. The most recently
    used model stays loaded, so calls for one model in a row reuse its compiled sampler. `mesh`
    (this process's devices: sampling never spans hosts) shards the model; one device if None.
    `cache` holds the Sampler's paged-cache arguments (page_size, kv_cache_pages, kv_cache_gb,
    prefill_chunk); the Sampler's defaults where absent.
    """
    current: dict = {}

    def generate(model_ref: str, requests: Sequence[GenerationRequest]) -> list[Generated]:
        from ssd_jax.checkpoints.load import load_model
        from ssd_jax.sampling.sampler import Sampler, SampleRequest

        if current.get("ref") != model_ref:
            current.clear()
            loaded = load_model(model_ref, dtype=dtype, mesh=mesh)
            sampler = Sampler(loaded, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, mesh=mesh,
                              max_total_tokens=max_total_tokens, **dict(cache or {}))
            current.update(ref=model_ref, loaded=loaded, sampler=sampler)
        loaded, sampler = current["loaded"], current["sampler"]
        # One call for all of them: the points of a temperature grid fill batches together (the
        # sampler keys randomness by prompt id and sample index, shared across the grid).
        sample_requests = [
            SampleRequest(prompt_id=r.prompt_id, sample_index=r.sample_index,
                          prompt_text=loaded.chat_template.render(list(r.messages), add_generation_prompt=True,
                                                                  **dict(chat_template_kwargs or {})),
                          temperature=r.temperature, top_k=r.top_k, top_p=r.top_p, adaptive=r.adaptive)
            for r in requests
        ]
        return [Generated(c.text, c.finish_reason, len(c.token_ids)) for c in sampler.generate(sample_requests)]

    return generate
