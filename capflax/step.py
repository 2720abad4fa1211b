"""One training step: gradients of the token cross-entropy over the global batch, maybe
accumulated over micro-batches, then the optimizer update and the parameter EMA."""

import jax
import jax.numpy as jnp
import optax

from capflax import losses, optim
from capflax.state import TrainState


def train_step(state: TrainState, batch: dict, *, model, tx, accum_steps: int = 1,
               label_smoothing: float = 0.0, ema_decay: float = 0.0,
               micro_sharding=None) -> tuple[TrainState, dict]:
  """AdamW on the mean token loss of the global batch.

  Gradients are of summed losses, divided by the global token count at the end, so
  `accum_steps` micro-batches give the full batch's gradient (up to float rounding).
  Micro-batch i takes rows i, i + k, i + 2k, ...: every device holds its share of each.
  BatchNorm statistics are means over the (micro-)batch across devices: XLA reduces them.
  """
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  # A batch holds uint8 images, or a frozen encoder's stored tokens (data.cache_features).
  cached = "features" in batch

  def sums(params, batch_stats, micro, rng):
    logits, updated = model.apply(
        {"params": params, "batch_stats": batch_stats},
        micro["features"] if cached else micro["image"], micro["tokens"][:, :-1], train=True,
        rngs={"dropout": rng}, mutable=["batch_stats"],
        method=type(model).from_features if cached else None)  # [b, l, vocab]
    total, count = losses.token_cross_entropy(logits, micro["tokens"][:, 1:], label_smoothing)
    return total, (count, updated.get("batch_stats", {}))

  grad_fn = jax.value_and_grad(sums, has_aux=True)
  if accum_steps == 1:
    (total, (count, batch_stats)), grad_sum = grad_fn(state.params, state.batch_stats, batch,
                                                      dropout_rng)
  else:
    def split(x):  # [b, ...] -> [k, b / k, ...]
      x = x.reshape(x.shape[0] // accum_steps, accum_steps, *x.shape[1:]).swapaxes(0, 1)
      return x if micro_sharding is None else jax.lax.with_sharding_constraint(x, micro_sharding)

    def accumulate(carry, xs):
      total, count, grad_sum, batch_stats = carry
      micro, i = xs
      (t, (c, batch_stats)), g = grad_fn(state.params, batch_stats, micro,
                                         jax.random.fold_in(dropout_rng, i))
      return (total + t, count + c, jax.tree.map(jnp.add, grad_sum, g), batch_stats), None

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    (total, count, grad_sum, batch_stats), _ = jax.lax.scan(
        accumulate, (0.0, 0.0, zeros, state.batch_stats),
        (jax.tree.map(split, batch), jnp.arange(accum_steps)))
  count = jnp.maximum(count, 1.0)
  grads = jax.tree.map(lambda g: g / count, grad_sum)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema = optim.ema_update(state.ema_params, params, ema_decay, state.step) if ema_decay else {}
  metrics = {"loss": total / count, "grad_norm": optax.tree.norm(grads), "tokens": count}
  return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                       opt_state=opt_state, ema_params=ema), metrics
