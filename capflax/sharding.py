"""The device mesh and the shardings every jitted function uses.

One `Mesh` over all devices (of all processes), in `jax.devices()` order, with Auto
axes: arrays carry `NamedSharding`s and XLA's partitioner inserts the collectives.
"""

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P


def make_mesh() -> Mesh:
  """A 1-D (`data`,) mesh of every device: pure data parallelism."""
  devices = np.asarray(jax.devices())  # [num_devices]
  return Mesh(devices, ("data",), axis_types=(AxisType.Auto,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`, the rest whole."""
  return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local: dict, mesh: Mesh) -> dict:
  """This process's slice of a batch (numpy) -> one global jax.Array per key."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local.items()}
