"""Fine-tuning (SSD stage 2): optimizer, jitted step, Orbax checkpoints with data state, the loop."""

from ssd_jax.training.checkpointing import RunMismatchError
from ssd_jax.training.settings import TrainSettings
from ssd_jax.training.trainer import TrainResult, train

__all__ = ["RunMismatchError", "TrainResult", "TrainSettings", "train"]
