"""Exceptions that the entry point reports as one paragraph, without a traceback."""


class ConfigError(ValueError):
    """A configuration mistake, found before anything is built."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN / inf loss; the run stops and its last good checkpoint is kept."""
