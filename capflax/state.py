"""The train state: what it holds, how long training lasts, and where each array lives.

`Spec` is everything that depends only on the config: the model, the optimizer, the
state's shapes and its shardings. Training creates the state from it already sharded
(`jax.jit(init, out_shardings=...)`); evaluation restores checkpoints into it.
"""

import dataclasses
import functools
import math
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from capflax import optim, sharding
from capflax.errors import ConfigError
from capflax.models import captioner


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any  # BatchNorm running statistics ({} for encoders without BatchNorm).
  opt_state: Any
  ema_params: Any  # Moving average of params when optim.ema_decay > 0, else {}.
  rng: jax.Array  # Raw uint32 key: checkpointable as a plain array.

  @property
  def variables(self) -> dict:
    """The trained weights, as `model.apply` takes them."""
    return {"params": self.params, "batch_stats": self.batch_stats}

  @property
  def eval_variables(self) -> dict:
    """What evaluation and decoding use: the EMA weights when there are any."""
    return {"params": self.ema_params or self.params, "batch_stats": self.batch_stats}


def init_state(config, model, tx, rng) -> TrainState:
  images = jnp.zeros((1, config.data.image_size, config.data.image_size, 3), jnp.uint8)
  tokens = jnp.zeros((1, config.data.max_len + 1), jnp.int32)
  params_rng, state_rng = jax.random.split(rng)
  variables = model.init({"params": params_rng}, images, tokens)
  params = variables["params"]
  return TrainState(step=jnp.array(0, jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                    ema_params=params if config.optim.ema_decay else {}, rng=state_rng)


@dataclasses.dataclass(frozen=True)
class Durations:
  total_steps: int
  warmup_steps: int
  curve_every: int = 0  # Steps between loss-only training-curve points; 0: none.


def durations(config: ml_collections.ConfigDict, epoch_size: int,
              flops_per_example: float | None = None) -> Durations:
  """Steps from `train.num_steps`, or `train.num_epochs`, or `train.flops_budget` (the first
  set of the last two wins); warmup from `optim.warmup_steps`, `warmup_epochs` or
  `warmup_fraction` of the steps; the training-curve spacing from `train.curve_points`.

  epoch_size: elements per epoch ((image, caption) pairs or images, by
  `data.captions_per_image`). flops_per_example: training FLOPs per element
  (`run_record.training_flops_per_example`), needed with a FLOPs budget: the run then
  takes the whole number of steps whose FLOPs come closest to the budget.
  """
  t, o = config.train, config.optim
  to_steps = lambda epochs: math.ceil(epochs * epoch_size / t.batch_size)
  if t.flops_budget:
    if not flops_per_example:
      raise ConfigError("config.train.flops_budget needs the training FLOPs per example.")
    total = max(1, round(t.flops_budget / (flops_per_example * t.batch_size)))
  else:
    total = to_steps(t.num_epochs) if t.num_epochs else t.num_steps
  if o.warmup_fraction:
    warmup = round(o.warmup_fraction * total)
  else:
    warmup = to_steps(o.warmup_epochs) if o.warmup_epochs else o.warmup_steps
  if total < 1:
    raise ConfigError(f"config.train: {total} training steps; set num_steps, num_epochs or "
                      f"flops_budget > 0.")
  if not 0 <= o.warmup_fraction < 1:
    raise ConfigError(f"config.optim.warmup_fraction must be in [0, 1), got {o.warmup_fraction}.")
  if t.curve_points < 0:
    raise ConfigError(f"config.train.curve_points must be >= 0, got {t.curve_points}.")
  curve_every = max(1, total // t.curve_points) if t.curve_points else 0
  return Durations(total, min(warmup, total), curve_every)


@dataclasses.dataclass(frozen=True)
class Spec:
  model: Any
  tx: optax.GradientTransformation
  lr: optax.Schedule
  init: Callable[[jax.Array], TrainState]  # rng -> state
  abstract: TrainState  # ShapeDtypeStructs carrying their shardings
  shardings: TrainState  # A NamedSharding per leaf


def make_spec(config: ml_collections.ConfigDict, vocab_size: int, mesh,
              length: Durations) -> Spec:
  model = captioner.build(config, vocab_size)
  tx = optim.make(config, length.total_steps, length.warmup_steps)
  init = functools.partial(init_state, config, model, tx)
  shapes = jax.eval_shape(init, jax.random.PRNGKey(0))
  m = config.mesh
  shardings = sharding.state_shardings(shapes, mesh, m.rules, m.fsdp_min_size)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          shapes, shardings)
  return Spec(model, tx, optim.schedule(config, length.total_steps, length.warmup_steps), init,
              abstract, shardings)
