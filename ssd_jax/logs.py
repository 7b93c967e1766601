"""Terminal logging for the launchers: progress bars and our own lines, not libraries' chatter."""

from __future__ import annotations

import logging as std_logging
import os

from absl import logging


class _QuietLibraries(std_logging.Filter):
    """Keeps Orbax's and Grain's per-operation INFO lines off the terminal (warnings still show)."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        noisy = any(f"{os.sep}{name}{os.sep}" in record.pathname for name in ("orbax", "grain"))
        return record.levelno >= std_logging.WARNING or not noisy


def quiet_library_logs() -> None:
    logging.get_absl_handler().addFilter(_QuietLibraries())
