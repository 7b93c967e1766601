"""Sweeps: one base config file and a list of variants (flat field overrides).

A sweep file defines `BASE_CONFIG` (a config file path, relative to the repository root) and
`get_sweep() -> list[dict]`, each dict mapping dotted field names to values, e.g.
`{"workdir": "runs/t1.0", "sampling.temperature": 1.0}`. Variants run one after another here,
or are printed as one launch command each, for a cluster scheduler. `sweep_report` reads each
variant's evaluation back and tabulates pass@1 against T_train, T_eval and T_eff = T_train · T_eval.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
from typing import Any

from ml_collections import ConfigDict

from ssd_jax.workdir import Workdir


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


def sweep_report(base_config: str, variants: list[dict[str, Any]]) -> str:
    """One row per variant and evaluation temperature: T_train, T_eval, T_eff = T_train · T_eval,
    the SSD model's pass@1, and the best pass@1 over its evaluated checkpoints (the paper's sweep
    figures) with the checkpoint it came from. Variants not evaluated yet say so."""
    header = ["T_train", "T_eval", "T_eff", "pass@1 final %", "best over checkpoints %"]
    rows, best = [], None
    for overrides in variants:
        t_train = float(overrides.get("sampling.temperature", _base_field(base_config, "sampling.temperature")))
        path = Workdir(overrides["workdir"]).results
        if not path.exists():
            rows.append([f"{t_train:g}", "-", "-", f"not evaluated yet ({path})", ""])
            continue
        models = json.loads(path.read_text())["models"]
        ssd = {name: entry for name, entry in models.items() if name == "ssd" or name.startswith("ssd@")}
        for key in sorted({key for entry in ssd.values() for key in entry["temperatures"]}, key=float):
            t_eval = float(key)
            scores = {name: _pass_at_1(entry, key) for name, entry in ssd.items()}
            scores = {name: value for name, value in scores.items() if value is not None}
            top = max(scores, key=scores.get) if scores else None
            final = scores.get("ssd")
            rows.append([f"{t_train:g}", f"{t_eval:g}", f"{t_train * t_eval:.2f}",
                         "-" if final is None else f"{100 * final:.1f}",
                         "-" if top is None else f"{100 * scores[top]:.1f} ({top})"])
            if top is not None and (best is None or scores[top] > best[0]):
                best = (scores[top], t_train, t_eval)
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in [header] + rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    if best:
        lines.append(f"highest pass@1 {100 * best[0]:.1f}% at T_train {best[1]:g} × T_eval {best[2]:g} "
                     f"= T_eff {best[1] * best[2]:.2f}")
    return "\n".join(lines)


def _pass_at_1(entry: dict, key: str) -> float | None:
    summary = entry["temperatures"].get(key)
    return summary["pass@1"]["value"] if summary and summary.get("pass@1") else None


def _base_field(base_config: str, field: str) -> Any:
    module = load_module(base_config)
    config = module.recipe() if hasattr(module, "recipe") else module.get_config()
    node = config
    for part in field.split("."):
        node = node[part]
    return node
