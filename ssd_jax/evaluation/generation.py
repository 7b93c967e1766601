"""What the evaluator asks of a model, and the default answerer: ssd-jax's own sampler.

The evaluator only needs a `GenerateFn`: `(model_ref, requests) -> one Generated per request`.
Tests pass canned responses; real runs use `sampler_generate_fn`, which loads each model once
and keeps one compiled Sampler for all of that model's requests (temperatures are per-row
arrays in the sampler, so a temperature grid never recompiles).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """One sample to draw: chat `messages` for problem `prompt_id`, sample number `sample_index`."""

    prompt_id: str
    sample_index: int
    messages: tuple[dict, ...]
    temperature: float
    top_k: int
    top_p: float


@dataclasses.dataclass(frozen=True)
class Generated:
    """A model's response to one request."""

    text: str
    finish_reason: str = ""
    num_tokens: int = 0


GenerateFn = Callable[[str, Sequence[GenerationRequest]], Sequence[Generated]]


def sampler_generate_fn(*, max_new_tokens: int, batch_size: int, seed: int, dtype: str = "float32",
                        mesh_axes: Mapping[str, int] | None = None) -> GenerateFn:
    """A GenerateFn backed by `ssd_jax.sampling.sampler.Sampler` (imported on first use).

    The model's chat template renders the messages; the most recently used model stays
    loaded, so calls for one model in a row reuse its compiled sampler. `mesh_axes`
    (data/fsdp/model sizes, as config.mesh) shards the model over this host's devices.
    """
    current: dict = {}

    def generate(model_ref: str, requests: Sequence[GenerationRequest]) -> list[Generated]:
        from ssd_jax.checkpoints.load import load_model
        from ssd_jax.parallel.mesh import make_mesh
        from ssd_jax.sampling.sampler import SampleRequest, Sampler

        if current.get("ref") != model_ref:
            current.clear()
            mesh = make_mesh(**mesh_axes) if mesh_axes else None
            loaded = load_model(model_ref, dtype=dtype, mesh=mesh)
            sampler = Sampler(loaded, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, mesh=mesh,
                              stop_token_ids=tuple(loaded.eos_token_ids))
            current.update(ref=model_ref, loaded=loaded, sampler=sampler)
        loaded, sampler = current["loaded"], current["sampler"]
        # One call for all of them: the points of a temperature grid fill batches together (the
        # sampler keys randomness by prompt id and sample index, shared across the grid).
        sample_requests = [
            SampleRequest(prompt_id=r.prompt_id, sample_index=r.sample_index,
                          prompt_text=loaded.chat_template.render(list(r.messages), add_generation_prompt=True),
                          temperature=r.temperature, top_k=r.top_k, top_p=r.top_p)
            for r in requests
        ]
        return [Generated(c.text, c.finish_reason, len(c.token_ids)) for c in sampler.generate(sample_requests)]

    return generate
