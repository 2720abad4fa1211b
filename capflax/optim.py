"""Optimizer and learning-rate schedule from `config.optim`."""

import re

import jax
import jax.numpy as jnp
import ml_collections
import optax

from capflax import sharding
from capflax.errors import ConfigError

SCHEDULES = ("cosine", "linear", "rsqrt", "constant")


def schedule(config: ml_collections.ConfigDict, total_steps: int,
             warmup_steps: int) -> optax.Schedule:
  """Linear warmup from 0 to `lr`, then `optim.schedule`.

  cosine / linear: decay to `lr * end_lr_fraction` at `total_steps`; rsqrt:
  `lr * sqrt(warmup / step)` (the Transformer's, no end); constant: `lr`.
  """
  o = config.optim
  decay_steps = max(total_steps - warmup_steps, 1)
  end = o.lr * o.end_lr_fraction
  if o.schedule == "cosine":
    after = optax.cosine_decay_schedule(o.lr, decay_steps, alpha=o.end_lr_fraction)
  elif o.schedule == "linear":
    after = optax.linear_schedule(o.lr, end, decay_steps)
  elif o.schedule == "rsqrt":
    after = lambda step: o.lr * jax.lax.rsqrt((step + max(warmup_steps, 1)) /
                                              max(warmup_steps, 1))
  elif o.schedule == "constant":
    after = optax.constant_schedule(o.lr)
  else:
    raise ConfigError(f"config.optim.schedule must be one of {SCHEDULES}, got {o.schedule!r}.")
  warmup = optax.linear_schedule(0.0, o.lr, warmup_steps)
  return optax.join_schedules([warmup, after], [warmup_steps])


def decay_mask(params, pattern: str):
  """True for parameters whose path ('decoder/embed/embedding') `pattern` finds.

  The default pattern takes kernels (Dense, DenseGeneral, Conv) only: not biases, norms
  or embeddings. Keyed on the name, not the rank: attention biases are [heads, head_dim]
  and scanned blocks stack a leading [depth] axis onto every parameter.
  """
  regex = re.compile(pattern)
  return jax.tree_util.tree_map_with_path(
      lambda path, _: bool(regex.search(sharding.path_name(path))), params)


def _part(params):
  """'encoder' for the image encoder's parameters, 'rest' for the bridge and decoder."""
  return {k: jax.tree.map(lambda _, k=k: "encoder" if k == "encoder" else "rest", v)
          for k, v in params.items()}


def make(config: ml_collections.ConfigDict, total_steps: int,
         warmup_steps: int) -> optax.GradientTransformation:
  """AdamW on the clipped global gradient; the encoder frozen or at `encoder_lr_mult` x lr.

  A frozen encoder gets no optimizer state and zero updates, so its parameters stay
  bit-identical.
  """
  o = config.optim
  lr = schedule(config, total_steps, warmup_steps)

  def adamw(mult):
    return optax.adamw(lr if mult == 1 else lambda step: mult * lr(step), b1=o.b1, b2=o.b2,
                       weight_decay=o.weight_decay,
                       mask=lambda params: decay_mask(params, o.weight_decay_pattern))

  encoder = optax.set_to_zero() if config.model.encoder.frozen else adamw(o.encoder_lr_mult)
  return optax.chain(
      optax.clip_by_global_norm(o.grad_clip_norm) if o.grad_clip_norm else optax.identity(),
      optax.multi_transform({"encoder": encoder, "rest": adamw(1.0)}, _part))


def ema_update(ema, params, decay: float, step):
  """Exponential moving average of the parameters, warmed up so early steps count.

  The effective decay min(decay, (1 + step) / (10 + step)) keeps the average from being
  dominated by the random initialization in short runs.
  """
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema, params)
