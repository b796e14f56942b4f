"""Exceptions that the entry point reports as one paragraph, without a traceback."""


class ConfigError(ValueError):
    """A configuration mistake, found before anything is built."""
