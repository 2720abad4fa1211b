"""Joining the processes of a multi-host run with `jax.distributed.initialize`.

Must run before anything touches the devices. Cloud TPU VMs describe their slice to JAX
(which auto-detects it); GPU and CPU clusters name the coordinator by flags.
"""

import importlib.util

import jax
from absl import logging

from capflax.errors import ConfigError


def initialize(coordinator_address: str | None, num_processes: int | None,
               process_id: int | None) -> None:
  """Explicit flags win; else on a TPU VM (libtpu installed) JAX auto-detects the slice;
  else one process."""
  given = [coordinator_address is not None, num_processes is not None, process_id is not None]
  if any(given) and not all(given):
    raise ConfigError("--coordinator_address, --num_processes and --process_id go together; "
                      "give all three or none.")
  if all(given):
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  elif importlib.util.find_spec("libtpu") is not None:
    jax.distributed.initialize()
  else:
    return
  logging.info("Joined %d processes as process %d.", jax.process_count(), jax.process_index())
