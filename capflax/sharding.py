"""The device mesh and the shardings every jitted function uses.

One `Mesh` over all devices (of all processes) with Auto axes, shaped by `config.mesh`:
`data` splits the batch; `fsdp` splits the batch too, and also the parameters and
optimizer state (fully sharded data parallelism). Arrays carry `NamedSharding`s and
XLA's partitioner inserts the collectives.
"""

import re

import jax
import ml_collections
from jax.experimental import mesh_utils
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from capflax.errors import ConfigError

AXES = ("data", "fsdp")
BATCH_AXES = AXES  # The batch is split over every axis: each device sees its own examples.


def mesh_shape(config: ml_collections.ConfigDict, num_devices: int) -> tuple[int, ...]:
  """Sizes of `AXES` from `config.mesh`; one size may be -1: the devices left over."""
  unknown = set(config.mesh) - set(AXES) - {"rules", "fsdp_min_size"}
  if unknown:
    raise ConfigError(f"config.mesh: unknown axis {sorted(unknown)[0]!r}; the axes are {AXES}.")
  sizes = [int(config.mesh[a]) for a in AXES]
  if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
    raise ConfigError(f"config.mesh: sizes {dict(zip(AXES, sizes))} must be positive, with at "
                     f"most one -1 ('the rest').")
  known = int(np.prod([s for s in sizes if s != -1]))
  if num_devices % known:
    raise ConfigError(f"config.mesh {dict(zip(AXES, sizes))} does not divide the {num_devices} "
                     f"devices.")
  sizes = [num_devices // known if s == -1 else s for s in sizes]
  if int(np.prod(sizes)) != num_devices:
    raise ConfigError(f"config.mesh {dict(zip(AXES, sizes))} uses {int(np.prod(sizes))} of the "
                     f"{num_devices} devices; set one axis to -1 or make the product match.")
  return tuple(sizes)


def make_mesh(config: ml_collections.ConfigDict | None = None, devices=None) -> Mesh:
  """`devices` (default: all) as a (`data`, `fsdp`) mesh; without a config, pure data
  parallelism.

  `create_device_mesh` orders devices so that the inner (`fsdp`) axis, which carries
  the most traffic, stays within fast interconnect.
  """
  devices = jax.devices() if devices is None else list(devices)
  n = len(devices)
  shape = mesh_shape(config, n) if config is not None else (n, 1)
  devices = mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
  return Mesh(devices, AXES, axis_types=(AxisType.Auto,) * len(AXES))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over every mesh axis, the rest whole."""
  return NamedSharding(mesh, P(BATCH_AXES))


def micro_batch_sharding(mesh: Mesh) -> NamedSharding:
  """[micro-batches, batch / micro-batches, ...]: each micro-batch split like a batch."""
  return NamedSharding(mesh, P(None, BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def fsdp_spec(shape: tuple[int, ...], fsdp: int, min_size: int) -> P:
  """Split the largest dimension that `fsdp` divides evenly; small arrays stay whole.

  Ties go to the last such dimension (the output features of a kernel).
  """
  if fsdp == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
    return P()
  divisible = [(size, i) for i, size in enumerate(shape) if size % fsdp == 0]
  if not divisible:
    return P()
  _, dim = max(divisible)
  return P(*[("fsdp" if i == dim else None) for i in range(len(shape))])


def path_name(path) -> str:
  """A key path as 'params/decoder/block_0/kernel': what the sharding rules match."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))))
                  for k in path)


def state_shardings(abstract_state, mesh: Mesh, rules, fsdp_min_size: int):
  """A `NamedSharding` for every leaf of the train state, by the first matching rule.

  rules: (regex, 'replicate' | 'fsdp') pairs searched in the leaf's path (params and
  optimizer state alike: Adam's moments follow their parameter's rule). Leaves no rule
  matches are replicated.
  """
  compiled = []
  for pattern, action in rules:
    if action not in ("replicate", "fsdp"):
      raise ConfigError(f"config.mesh.rules: action {action!r} for {pattern!r} must be "
                       f"'replicate' or 'fsdp'.")
    compiled.append((re.compile(pattern), action))
  fsdp = mesh.shape["fsdp"]

  def leaf(path, x):
    name = path_name(path)
    for regex, action in compiled:
      if regex.search(name):
        if action == "fsdp":
          return NamedSharding(mesh, fsdp_spec(x.shape, fsdp, fsdp_min_size))
        break
    return replicated(mesh)

  return jax.tree_util.tree_map_with_path(leaf, abstract_state)


def global_batch(local: dict, mesh: Mesh) -> dict:
  """This process's slice of a batch (numpy) -> one global jax.Array per key."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local.items()}
