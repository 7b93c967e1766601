"""Sample-record shards for the pipeline and trainer tests, written with the real ShardWriter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssd_jax.data.records import SampleRecord, ShardWriter, process_shard_name


def make_record(index: int, completion: str) -> SampleRecord:
    return SampleRecord(
        prompt_id=f"p{index:04d}", sample_index=0,
        messages=[{"role": "system", "content": "Answer in Python."},
                  {"role": "user", "content": f"Print the square of {index}."}],
        prompt_text="", completion=completion, prompt_tokens=0, completion_tokens=0, finish_reason="eos",
        temperature=1.6, top_k=20, top_p=0.8, model="tiny-random", seed=0, source="test",
    )


def code_completion(index: int, rng: np.random.Generator) -> str:
    """A multi-line fenced program of random length (2-7 body lines)."""
    body = "\n".join(f"v{j} = {index} * {j}" for j in range(int(rng.integers(2, 8))))
    return f"```python\n{body}\nprint({index} ** 2)\n```"


def write_shards(directory: Path, completions: list[str], chunk_size: int = 8) -> Path:
    """One record per completion, in chunks of `chunk_size`, as process 0 of a sampler would."""
    with ShardWriter(directory, process_shard_name(0), chunk_size=chunk_size) as writer:
        for index, completion in enumerate(completions):
            writer.write(make_record(index, completion))
    return directory


def write_code_shards(directory: Path, count: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return write_shards(directory, [code_completion(i, rng) for i in range(count)])
