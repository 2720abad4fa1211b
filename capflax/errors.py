"""The error for a config value that cannot work."""


class ConfigError(ValueError):
  """A config field's value is unusable; the message names the field. The commands print
  it as one line, without a traceback (`capflax.cli.USER_ERRORS`)."""
