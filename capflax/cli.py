"""What every command shares: how it starts (flags parsed into one line on error), which
errors are the user's to fix (one line, no traceback, no help text), Ctrl-C (exit 130),
and for the training commands the flags that join several processes and a quiet
checkpoint log."""

import errno
import functools
import logging as pylogging
import os
import sys

import ml_collections
from absl import app, flags, logging

from capflax import distributed
from capflax.data.scene_file import SceneFileError
from capflax.data.sources import DataError
from capflax.errors import ConfigError, NonFiniteError, WorkdirError
from capflax.models.pretrained import CheckpointError

# The user's files, config or run, not our code: one line says all, no traceback.
USER_ERRORS = (DataError, SceneFileError, CheckpointError, ConfigError, WorkdirError,
               NonFiniteError)
# Errors of the user's file system (a read-only or full disk, a file where a folder
# belongs): one line naming the path.
USER_OS_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                  errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT)
INTERRUPTED = 130  # The shell's status for a Ctrl-C.


def run(main, prog: str) -> None:
  """`app.run(main)`, with every user error as one line `prog: ...` on stderr."""
  app.run(functools.partial(_guarded, main, prog),
          flags_parser=functools.partial(_parse_flags, prog))


def fail(prog: str, message: str, status: int = 1):
  print(f"{prog}: {message}", file=sys.stderr)
  sys.exit(status)


def _guarded(main, prog, argv):
  try:
    return main(argv)
  except (app.UsageError, *USER_ERRORS) as e:
    fail(prog, str(e))
  except OSError as e:
    if e.errno not in USER_OS_ERRORS:
      raise
    fail(prog, f"{e.filename}: {e.strerror}." if e.filename else str(e))
  except KeyboardInterrupt:
    fail(prog, "interrupted (Ctrl-C); no checkpoint was being written.", INTERRUPTED)


def _last_line(text: str) -> str:
  """The message of a wrapped error: its last non-empty line, without 'ValueError: '."""
  line = [t for t in text.strip().splitlines() if t.strip()][-1].strip()
  head, sep, rest = line.partition(": ")
  return rest if sep and head.isidentifier() and head.endswith(("Error", "Exception")) else line


def _parse_flags(prog, argv):
  """absl's parse, but a bad flag or --config override is one line without the help."""
  try:
    rest = flags.FLAGS(argv)
  except flags.Error as e:
    message = str(e)
    if "Traceback" in message:  # A config file's get_config raised: keep its message.
      message = f"{message.split(':', 1)[0].removeprefix('flag ')}: {_last_line(message)}"
    fail(prog, message)
  except (KeyError, AttributeError, TypeError, ValueError) as e:  # --config.KEY=... overrides
    fail(prog, _override_error(argv, e))
  for name in flags.FLAGS:
    flag = flags.FLAGS[name]
    if flag.present and flag.flag_type() == "config object" and not isinstance(
        flag.value, ml_collections.ConfigDict):
      path = flag.serialize().split("=", 1)[-1].split(":", 1)[0]
      if not os.path.isfile(path):
        fail(prog, f"--{name}={path}: no such config file.")
      try:
        flag.value.keys()
      except Exception as e:  # noqa: BLE001 - the config file could not be loaded: why.
        why = _last_line(str(e)).rsplit("failure to load: ", 1)[-1]
        fail(prog, f"--{name}={path}: {why}")
  return rest


def _override_error(argv, e) -> str:
  """'--config.trian.batch_size=8: unknown config key 'trian'; did you mean 'train'?'"""
  key = str(e.args[0]) if e.args else str(e)
  lines = [t.strip().strip("'\"") for t in key.splitlines() if t.strip()]
  bad = lines[0] if lines else type(e).__name__
  given = next((a for a in argv[1:] if a.startswith("--config.") and f".{bad}" in a.split("=")[0]
                + "."), None)
  hint = "; " + lines[1][0].lower() + lines[1][1:] if len(lines) > 1 else ""
  if isinstance(e, (KeyError, AttributeError)):
    return f"{given or '--config'}: unknown config key {bad!r}{hint}"
  return f"{given or '--config'}: {' '.join(lines)}"


def define_distributed_flags() -> None:
  flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0, to join several "
                      "processes (GPU or CPU hosts) with jax.distributed.initialize; not needed "
                      "on Cloud TPU VMs, where it is automatic.")
  flags.DEFINE_integer("num_processes", None, "With --coordinator_address: how many processes.")
  flags.DEFINE_integer("process_id", None, "With --coordinator_address: this process, 0..N-1.")


class _QuietOrbax(pylogging.Filter):
  """Drops orbax's dozen INFO lines per checkpoint from the training log; warnings pass."""

  def filter(self, record):
    return record.levelno >= pylogging.WARNING or "/orbax/" not in record.pathname


def start(flag_values) -> None:
  """Before any device is touched: quiet orbax, join the other processes if any."""
  logging.get_absl_handler().addFilter(_QuietOrbax())
  distributed.initialize(flag_values.coordinator_address, flag_values.num_processes,
                         flag_values.process_id)
