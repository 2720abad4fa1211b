"""The error for a config value that cannot work: `main` prints its one line, no traceback."""


class ConfigError(ValueError):
  pass
