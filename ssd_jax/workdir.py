"""The run's work directory: every stage's outputs named in one place, on any storage.

    <workdir>/samples/                   sample shards of the frozen base model       (stage `sample`)
    <workdir>/train/checkpoints/<step>/  Orbax training checkpoints                   (stage `train`)
    <workdir>/train/metrics.jsonl        one JSON line per step; TensorBoard events beside it
    <workdir>/train/final/               the SSD model (an ssd-jax model directory)
    <workdir>/train/models/step_<N>/     each checkpoint's model, with train.checkpoint_models
    <workdir>/eval/process<i>/           each process's share: samples.jsonl, verdicts.jsonl (stage `evaluate`)
    <workdir>/eval/results.json          pass@k per model and temperature, and pass_at_1.png
    <workdir>/ssd_report.json            the base-vs-SSD summary                        (stage `report`)
    <stage dir>/SETTINGS.json            the settings a stage started with (written when it starts)
    <stage dir>/COMPLETE                 written when a stage finished on every process

Paths are `etils.epath.Path`s, so a workdir may be local or `gs://bucket/run` (install the
`gcs` extra). Nothing here turns a workdir into an absolute local path: `gs://b/x` stays remote.
"""

from __future__ import annotations

import dataclasses
import os

from etils import epath

STAGE_DIRS = {"sample": "samples", "train": "train", "evaluate": "eval", "report": "report"}


def is_local(path: str | epath.PathLike) -> bool:
    """True for paths of this machine's file system (not `gs://`, `s3://`, ...)."""
    return "://" not in str(path)


def cache_path(path: str | epath.PathLike) -> epath.Path:
    """Where `local_copy` keeps remote `path`: `$SSD_JAX_CACHE/<scheme>/<bucket>/<object path>`."""
    cache = epath.Path(os.environ.get("SSD_JAX_CACHE", os.path.expanduser("~/.cache/ssd_jax")))
    return cache / str(path).replace("://", "/", 1).rstrip("/")


def local_copy(path: str | epath.PathLike) -> str:
    """A local file name for `path`: itself when local; for a remote file (gs://) a copy under
    `$SSD_JAX_CACHE` (default ~/.cache/ssd_jax), made once and reused while its size matches,
    for readers that need local files (safetensors memory maps, ArrayRecord, Grain)."""
    if is_local(path):
        return str(path)
    source, copy = epath.Path(path), cache_path(path)
    if not copy.exists() or copy.stat().length != source.stat().length:
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_name(f"{copy.name}.partial{os.getpid()}")  # processes sharing a disk copy side by side
        partial.write_bytes(source.read_bytes())
        partial.replace(copy)
    return str(copy)


@dataclasses.dataclass(frozen=True)
class Workdir:
    """Names every output of a run under `root` (a local path or a `gs://` URL)."""

    root: epath.Path

    def __init__(self, root: str | epath.PathLike):
        if not str(root):
            from ssd_jax.errors import ConfigError

            raise ConfigError("config.workdir is empty: say where the run's outputs go (a directory or gs:// URL)")
        # A local root is made absolute (Orbax wants that); a remote one is left exactly as given.
        object.__setattr__(self, "root", epath.Path(os.path.abspath(root) if is_local(root) else root))

    def stage_dir(self, stage: str) -> epath.Path:
        return self.root / STAGE_DIRS[stage]

    def marker(self, stage: str) -> epath.Path:
        return self.stage_dir(stage) / "COMPLETE"

    def settings(self, stage: str) -> epath.Path:
        return self.stage_dir(stage) / "SETTINGS.json"

    @property
    def samples(self) -> epath.Path:
        return self.stage_dir("sample")

    @property
    def train(self) -> epath.Path:
        return self.stage_dir("train")

    @property
    def checkpoints(self) -> epath.Path:
        return self.train / "checkpoints"

    @property
    def metrics(self) -> epath.Path:
        return self.train / "metrics.jsonl"

    @property
    def tensorboard(self) -> epath.Path:
        """TensorBoard event files, beside metrics.jsonl (`tensorboard --logdir <workdir>`)."""
        return self.train

    @property
    def final_model(self) -> epath.Path:
        return self.train / "final"

    @property
    def checkpoint_models(self) -> epath.Path:
        """Where `train.checkpoint_models` exports each checkpoint's model (`step_<N>/`)."""
        return self.train / "models"

    def checkpoint_model(self, step: int) -> epath.Path:
        """The model of the training checkpoint at `step` (an ssd-jax model directory)."""
        return self.checkpoint_models / f"step_{step}"

    @property
    def eval(self) -> epath.Path:
        return self.stage_dir("evaluate")

    def eval_share(self, process_index: int) -> epath.Path:
        """One process's evaluation stores (its share of the requests)."""
        return self.eval / f"process{process_index:05d}"

    def eval_shares(self) -> list[epath.Path]:
        """Every process's evaluation store directory written so far."""
        if not self.eval.exists():
            return []
        return sorted(p for p in self.eval.iterdir() if p.name.startswith("process"))

    @property
    def results(self) -> epath.Path:
        return self.eval / "results.json"

    @property
    def report(self) -> epath.Path:
        return self.root / "ssd_report.json"
