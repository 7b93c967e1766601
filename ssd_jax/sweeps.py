"""Sweeps: one base config file and a list of variants (flat field overrides).

A sweep file defines `BASE_CONFIG` (a config file path, relative to the repository root) and
`get_sweep() -> list[dict]`, each dict mapping dotted field names to values, e.g.
`{"workdir": "runs/t1.0", "sampling.temperature": 1.0}`. Variants run one after another here,
or are printed as one launch command each, for a cluster scheduler.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
from typing import Any

from ml_collections import ConfigDict


def load_module(path: str):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path} does not exist")
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_sweep(path: str) -> tuple[str, list[dict[str, Any]]]:
    """The sweep file's base config path and its variants."""
    module = load_module(path)
    for name in ("BASE_CONFIG", "get_sweep"):
        if not hasattr(module, name):
            raise ValueError(f"sweep file {path} must define {name}")
    variants = list(module.get_sweep())
    for variant in variants:
        if "workdir" not in variant:
            raise ValueError(f"every variant of {path} needs its own 'workdir'; this one has none: {variant}")
    return module.BASE_CONFIG, variants


def variant_config(base_config: str, overrides: dict[str, Any]) -> ConfigDict:
    """The base config with one variant's overrides; unknown fields are an error."""
    config = load_module(base_config).get_config()
    for field, value in overrides.items():
        parent, _, leaf = field.rpartition(".")
        node = config
        for part in filter(None, parent.split(".")):
            node = node[part]
        if leaf not in node:
            raise KeyError(f"sweep override {field!r}: {base_config} has no such field")
        node[leaf] = value
    return config


def launch_command(launcher: str, base_config: str, overrides: dict[str, Any]) -> str:
    """The shell command that runs one variant with `launch/<launcher>.py`."""
    args = [f"--config={base_config}"] + [f"--config.{k}={_flag_value(v)}" for k, v in overrides.items()]
    return " ".join(["python", f"launch/{launcher}.py", *map(shlex.quote, args)])


def _flag_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)
