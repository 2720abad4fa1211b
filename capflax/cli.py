"""What the training commands (`capflax.main`, `capflax.sweep`) share: the flags that join
several processes, a quiet checkpoint log, and which errors are the user's to fix."""

import logging as pylogging

from absl import flags, logging

from capflax import distributed, train
from capflax.data.sources import DataError
from capflax.errors import ConfigError
from capflax.models.pretrained import CheckpointError

# The user's files, config or run, not our code: one line says all, no traceback.
USER_ERRORS = (DataError, CheckpointError, ConfigError, train.NonFiniteError)


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
