"""The project's own error types: expected failures caused by a run's input.

A launcher prints an `SsdJaxError` as one line and exits non-zero; anything else is a bug and
keeps its traceback. Every message names the config field or the file, and the way out.
"""


class SsdJaxError(Exception):
    """An expected failure: bad config, missing or corrupt input, refused resume."""


class ConfigError(SsdJaxError):
    """A config field holds a value outside its documented range or choices."""


class InputError(SsdJaxError):
    """A file or directory the run reads is missing, truncated or corrupt."""


class SettingsChangedError(SsdJaxError):
    """A half-finished stage was resumed with settings that differ from the ones it started with."""
