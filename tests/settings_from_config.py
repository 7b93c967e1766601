"""Settings objects built from configs/base.py as the stages build them, then given a test's own
values, so configs/base.py stays the one place a default lives. (Each helper imports only the
package it builds settings for.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from configs import base


def data_settings(samples_dir: str | Path, **fields):
    from ssd_jax.data.pipeline import DataSettings

    return dataclasses.replace(DataSettings.from_config(base.get_config(), samples_dir=str(samples_dir)), **fields)


def optimizer_settings(**fields):
    from ssd_jax.training.optimizer import OptimizerSettings

    return dataclasses.replace(OptimizerSettings.from_config(base.get_config()), **fields)


def eval_settings(**fields):
    from ssd_jax.stages.evaluate import settings_from_config

    return dataclasses.replace(settings_from_config(base.get_config()), **fields)


def analysis_settings(**fields):
    from ssd_jax.analysis.from_config import settings_from_config

    return dataclasses.replace(settings_from_config(base.get_config()), **fields)
