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
  """Weight decay on kernels (Dense, DenseGeneral, Conv) only: not on biases, norms or embeddings.

  Keyed on the leaf's name, not its rank: attention biases are [heads, head_dim] and
  scanned blocks stack a leading [depth] axis onto every parameter.
  """
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


def _part(params):
  """'encoder' for the image encoder's parameters, 'rest' for the bridge and decoder."""
  return {k: jax.tree.map(lambda _, k=k: "encoder" if k == "encoder" else "rest", v)
          for k, v in params.items()}


def make(config: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """AdamW on the clipped global gradient; the encoder frozen or at `encoder_lr_mult` x lr.

  A frozen encoder gets no optimizer state and zero updates, so its parameters stay
  bit-identical.
  """
  o = config.optim
  lr = schedule(config, total_steps)

  def adamw(mult):
    return optax.adamw(lr if mult == 1 else lambda step: mult * lr(step), b1=o.b1, b2=o.b2,
                       weight_decay=o.weight_decay, mask=_decay_mask)

  encoder = optax.set_to_zero() if config.model.encoder.frozen else adamw(o.encoder_lr_mult)
  return optax.chain(
      optax.clip_by_global_norm(o.grad_clip_norm) if o.grad_clip_norm else optax.identity(),
      optax.multi_transform({"encoder": encoder, "rest": adamw(1.0)}, _part))
