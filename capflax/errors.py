"""The errors that are the user's to fix: a config value, a workdir, a diverged run."""


class ConfigError(ValueError):
  """A config field's value is unusable; the message names the field. The commands print
  it as one line, without a traceback (`capflax.cli.USER_ERRORS`)."""


class NonFiniteError(FloatingPointError):
  """The loss or gradient norm became NaN or infinite."""


class WorkdirError(ValueError):
  """The workdir cannot be used as asked: held by another training, holding another run,
  or no checkpoint to read. One line, like ConfigError."""
