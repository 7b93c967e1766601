"""Launchers on a host without accelerators run JAX on the CPU alone, quietly, even with libtpu
installed; a TPU VM and a preset JAX_PLATFORMS are left as they are."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A launcher whose main reports the platform choice and, with START_BACKENDS=1, starts JAX's
# backends (where libtpu, if installed and not skipped, prints its warnings). JAX's own hardware
# checks are made to find PRETEND_TPU_CHIPS TPU chips (a TPU VM where > 0) and no GPU, so the
# test means the same on any machine.
LAUNCHER = """
import os
from jax._src import hardware_utils
chips = int(os.environ["PRETEND_TPU_CHIPS"])
hardware_utils.num_available_tpu_chips_and_device_id = lambda: (chips, None)
hardware_utils.has_visible_nvidia_gpu = lambda: False
hardware_utils.num_available_amd_gpus = lambda stop_at=None: 0
from ssd_jax import launcher

def main(argv):
    print("JAX_PLATFORMS", os.environ.get("JAX_PLATFORMS"))
    if os.environ.get("START_BACKENDS"):
        import jax
        print("platform", jax.devices()[0].platform)

launcher.run(main)
"""


def _launch(chips: int, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "XLA_FLAGS")}
    return subprocess.run([sys.executable, "-c", LAUNCHER], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**clean, "PYTHONPATH": str(REPO), "PRETEND_TPU_CHIPS": str(chips), **env})


def test_a_host_without_accelerators_runs_on_the_cpu_without_tpu_warnings():
    run = _launch(0, START_BACKENDS="1")
    assert run.returncode == 0, run.stderr
    assert "TPU" not in run.stderr and "tpu" not in run.stderr, run.stderr
    assert run.stdout.split("\n")[:2] == ["JAX_PLATFORMS cpu", "platform cpu"]


def test_a_tpu_vm_and_a_chosen_platform_are_left_alone():
    assert _launch(4).stdout.startswith("JAX_PLATFORMS None\n")
    assert _launch(0, JAX_PLATFORMS="tpu").stdout.startswith("JAX_PLATFORMS tpu\n")
