"""What every launcher shares: an expected error is one line and a non-zero exit; a bug keeps its traceback.

Expected errors are the project's own (`ssd_jax.errors.SsdJaxError`: a bad config field, a
missing or corrupt input, a refused resume) and a `--config` file or override that does not
load. They print as `<launcher>: error: <message>` on stderr and exit with status 1 (2 for a
command line that does not parse). Anything else is a bug and shows its traceback. `--debug`
(or the environment variable SSD_JAX_DEBUG=1) shows the traceback of expected errors too.

On a host with neither a TPU chip nor a GPU, the launchers run JAX on the CPU alone
(`JAX_PLATFORMS=cpu`) unless `JAX_PLATFORMS` is already set. Otherwise, where libtpu is installed
(the test extra installs it to compile for TPU topologies), JAX would load libtpu to look for a
chip that is not there, and libtpu prints its warnings about an unknown accelerator type and
worker hostnames on every run. A TPU VM (a Google TPU chip on the PCI bus) and a GPU host are
left exactly as they are, so nothing the TPU runtime says there is hidden. Compiling for a TPU
topology (`launch/compile.py`) still loads libtpu, and still shows what it prints.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from absl import app, flags

from ssd_jax.errors import ConfigError, SsdJaxError

DEBUG_ENV = "SSD_JAX_DEBUG"
_DEBUG = flags.DEFINE_bool("debug", False, f"show the traceback of expected errors too (or set {DEBUG_ENV}=1)")
_DID_YOU_MEAN = re.compile(r'Did you mean \\?"(\w+)\\?" instead of \\?"(\w+)\\?"')


def run(main: Callable[[list[str]], Any]) -> None:
    """`absl.app.run(main)` with the error conventions of the module docstring, on the CPU alone
    where the host has no accelerator."""
    _cpu_only_without_accelerators()
    app.run(lambda argv: _one_line_errors(main, argv), flags_parser=_parse_flags)


def _cpu_only_without_accelerators() -> None:
    """Sets `JAX_PLATFORMS=cpu` (for this process and its children) where it is unset and JAX's
    own hardware checks find no TPU chip and no GPU; see the module docstring."""
    import jax
    from jax._src import hardware_utils  # what JAX itself checks before it initialises a Cloud TPU

    if os.environ.get("JAX_PLATFORMS") or jax.config.jax_platforms:
        return
    if (hardware_utils.num_available_tpu_chips_and_device_id()[0] or hardware_utils.has_visible_nvidia_gpu()
            or hardware_utils.num_available_amd_gpus(stop_at=1)):
        return
    os.environ["JAX_PLATFORMS"] = "cpu"
    jax.config.update("jax_platforms", "cpu")  # JAX read the environment when it was imported


def given_config(config_flag: flags.FlagHolder) -> Any:
    """The parsed `--config`; a missing flag is a `ConfigError`. The stage layer checks its fields
    (`ssd_jax.stages.prepare`) before any stage runs."""
    if config_flag.value is None:
        raise ConfigError(f"--{config_flag.name}: give a config file, e.g. --{config_flag.name}=configs/tiny.py")
    return config_flag.value


def _debugging(argv: Sequence[str] = ()) -> bool:
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        return True
    return _DEBUG.value if flags.FLAGS.is_parsed() else any(a.lower() in ("--debug", "--debug=true") for a in argv)


def _fail(message: str, status: int) -> NoReturn:
    print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr)
    sys.exit(status)


def _one_line_errors(main: Callable[[list[str]], Any], argv: list[str]) -> Any:
    try:
        return main(argv)
    except SsdJaxError as error:
        if _debugging():
            raise
        # What the failed operation left behind (e.g. Orbax's unfinished reads of a damaged
        # checkpoint) would otherwise print "Exception ignored in ..." tracebacks at exit.
        sys.unraisablehook = lambda unraisable: None
        _fail(_joined(error), 1)


def _joined(error: Exception) -> str:
    """A multi-line message as one line: its lines joined by '; ' (by ' ' after a line ending in ':')."""
    joined = ""
    for line in (line.strip() for line in str(error).strip().splitlines() if line.strip()):
        joined += ("" if not joined else " " if joined.endswith(":") else "; ") + line
    return joined


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing; a flag or a `--config` file that does not load is one line."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        if _debugging(argv):
            raise
        _fail(f"{error} (--helpshort lists the flags)", 2)
    except Exception as error:  # noqa: BLE001 - whatever the config file's code or an override raised
        if _debugging(argv):
            raise
        _fail(_config_load_message(error, argv), 2)


def _config_load_message(error: Exception, argv: Sequence[str]) -> str:
    """Names the `--config` file or the `--config.<field>` override that did not load."""
    files = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    config_file = files[-1] if files else "?"
    typo = _DID_YOU_MEAN.search(str(error.args[0]) if error.args else "")
    if isinstance(error, (KeyError, AttributeError)) and typo:
        right, wrong = typo.groups()
        for arg in argv:
            path = arg[len("--config."):].split("=", 1)[0] if arg.startswith("--config.") else ""
            if wrong in path.split("."):
                suggestion = ".".join(right if part == wrong else part for part in path.split("."))
                return (f"--config.{path}: no such config field; did you mean --config.{suggestion}? "
                        "(configs/base.py lists every field)")
        return f"--config={config_file}: the config file uses a field that does not exist: {wrong!r} (did you mean {right!r}?)"
    if not os.path.isfile(config_file):
        return f"--config={config_file}: no such file; give a config file such as configs/tiny.py"
    return f"--config={config_file}: the config file does not load: {type(error).__name__}: {_joined(error)}"
