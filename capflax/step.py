"""The training step: the objective's gradients over the global batch, maybe accumulated over
micro-batches, then the optimizer update and the parameter EMA; and `make`, the one factory
that builds it from the config (training and the benchmark alike)."""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from capflax import objectives, optim, sharding
from capflax.models import captioner
from capflax.state import Spec, TrainState


def train_step(state: TrainState, batch: dict, *, model, tx,
               loss: objectives.Loss = objectives.cross_entropy(), accum_steps: int = 1,
               ema_decay: float = 0.0, micro_sharding=None) -> tuple[TrainState, dict]:
  """AdamW on the objective's mean loss over the global batch.

  Gradients are of summed losses, divided by the global count at the end, so
  `accum_steps` micro-batches give the full batch's gradient (up to float rounding).
  Micro-batch i takes rows i, i + k, i + 2k, ...: every device holds its share of each.
  BatchNorm statistics are means over the (micro-)batch across devices: XLA reduces them.
  """
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def sums(params, batch_stats, micro, rng):
    logits, batch_stats = captioner.teacher_forced(
        model, {"params": params, "batch_stats": batch_stats}, micro, train=loss.train_mode,
        rng=rng)  # [b, (k,) l, vocab]
    total, count, extra = loss.fn(logits, micro)
    return total, (count, extra, batch_stats)

  grad_fn = jax.value_and_grad(sums, has_aux=True)
  if accum_steps == 1:
    (total, (count, extra, batch_stats)), grad_sum = grad_fn(state.params, state.batch_stats,
                                                             batch, dropout_rng)
  else:
    def split(x):  # [b, ...] -> [k, b / k, ...]
      x = x.reshape(x.shape[0] // accum_steps, accum_steps, *x.shape[1:]).swapaxes(0, 1)
      return x if micro_sharding is None else jax.lax.with_sharding_constraint(x, micro_sharding)

    def accumulate(carry, xs):
      total, count, extra, grad_sum, batch_stats = carry
      micro, i = xs
      (t, (c, e, batch_stats)), g = grad_fn(state.params, batch_stats, micro,
                                            jax.random.fold_in(dropout_rng, i))
      return (total + t, count + c, jax.tree.map(jnp.add, extra, e),
              jax.tree.map(jnp.add, grad_sum, g), batch_stats), None

    micros = jax.tree.map(split, batch)
    first = jax.tree.map(lambda x: x[0], micros)
    zero_extra = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(
        lambda: sums(state.params, state.batch_stats, first, dropout_rng)[1][1]))
    zeros = jax.tree.map(jnp.zeros_like, state.params)
    (total, count, extra, grad_sum, batch_stats), _ = jax.lax.scan(
        accumulate, (0.0, 0.0, zero_extra, zeros, state.batch_stats),
        (micros, jnp.arange(accum_steps)))
  count = jnp.maximum(count, 1.0)
  grads = jax.tree.map(lambda g: g / count, grad_sum)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema = optim.ema_update(state.ema_params, params, ema_decay, state.step) if ema_decay else {}
  tokens = extra.pop("tokens")
  metrics = {"loss": total / count, "grad_norm": optax.tree.norm(grads), "tokens": tokens}
  metrics |= {k: v / jnp.maximum(tokens, 1.0) for k, v in extra.items()}  # Per target token.
  return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                       opt_state=opt_state, ema_params=ema), metrics


@dataclasses.dataclass
class Step:
  """(state, host-local batch) -> (state, metrics): `update` (jitted, the state donated),
  after the objective's host stage when it has one (SCST: sampling and rewards)."""
  update: Callable  # (state, global batch) -> (state, metrics)
  mesh: jax.sharding.Mesh
  host_stage: Callable | None = None

  def __call__(self, state: TrainState, local: dict) -> tuple[TrainState, dict]:
    if self.host_stage is None:
      return self.update(state, sharding.global_batch(local, self.mesh))
    batch, host_metrics = self.host_stage(state, local)
    state, metrics = self.update(state, batch)
    return state, metrics | host_metrics


def make(config: ml_collections.ConfigDict, spec: Spec, mesh, train_records=None,
         vocab=None) -> Step:
  """The train step `config.train.objective` names, built as training runs it: sharded over
  `mesh`, `train.grad_accum_steps` micro-batches, the EMA of `optim.ema_decay`. An objective
  with a host stage needs the train records and vocabulary (SCST's references)."""
  objective = objectives.OBJECTIVES[config.train.objective]
  update = jax.jit(
      functools.partial(train_step, model=spec.model, tx=spec.tx, loss=objective.loss(config),
                        accum_steps=config.train.grad_accum_steps,
                        ema_decay=config.optim.ema_decay,
                        micro_sharding=sharding.micro_batch_sharding(mesh)),
      in_shardings=(spec.shardings, sharding.batch_sharding(mesh)),
      out_shardings=(spec.shardings, sharding.replicated(mesh)), donate_argnums=0)
  stage = objective.host_stage
  return Step(update, mesh, stage(config, spec.model, mesh, train_records, vocab) if stage
              else None)
