"""Optimizer and learning-rate schedule from `config.optim`."""

import jax
import ml_collections
import optax


def schedule(config: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Linear warmup from 0, then cosine decay to `lr * end_lr_fraction`."""
  o = config.optim
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=o.lr, warmup_steps=o.warmup_steps,
      decay_steps=max(total_steps, o.warmup_steps + 1), end_value=o.lr * o.end_lr_fraction)


def _decay_mask(params):
  """Weight decay on matrices and kernels only: not on biases, norms or embeddings."""
  def decays(path, leaf):
    names = {getattr(k, "key", "") for k in path}
    return leaf.ndim >= 2 and not names & {"embed", "pos_embedding", "cls"}
  return jax.tree_util.tree_map_with_path(decays, params)


def make(config: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  o = config.optim
  return optax.chain(
      optax.clip_by_global_norm(o.grad_clip_norm) if o.grad_clip_norm else optax.identity(),
      optax.adamw(schedule(config, total_steps), b1=o.b1, b2=o.b2, weight_decay=o.weight_decay,
                  mask=_decay_mask))
