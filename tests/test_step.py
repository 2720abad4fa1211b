"""The train step: accumulation, caption groups, label smoothing and the parameter EMA against
direct math."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from capflax import losses, sharding, state as state_lib, step as step_lib
from capflax.models import captioner
from configs import demo


def _setup(ema_decay=0.0):
  config = demo.get_config("tiny")
  config.optim.ema_decay = ema_decay
  spec = state_lib.make_spec(config, 13, sharding.make_mesh(), state_lib.Durations(10, 1))
  state = jax.jit(spec.init)(jax.random.PRNGKey(0))
  step = jax.jit(functools.partial(step_lib.train_step, model=spec.model, tx=spec.tx,
                                   ema_decay=ema_decay))
  return state, step


def _batches(n, b=8, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(4, 13, (n, b, 14)).astype(np.int32)
  tokens[:, :, 0] = 1
  tokens[:, :3, 9:] = 0  # Padding: rows of unequal length weigh by their tokens.
  return [{"image": rng.integers(0, 256, (b, 16, 16, 3)).astype(np.uint8), "tokens": t}
          for t in tokens]


def test_accumulated_micro_batches_give_the_full_batch_gradient():
  """With SGD at learning rate 1 the update is the gradient itself."""
  config = demo.get_config("tiny")
  config.model.decoder.dropout = 0.0  # Micro-batches would draw their own masks.
  model = captioner.build(config, 13)
  tx = optax.sgd(1.0)
  start = jax.jit(functools.partial(state_lib.init_state, config, model, tx))(
      jax.random.PRNGKey(0))
  batch = _batches(1)[0]
  results = {}
  for accum in (1, 4):
    step = jax.jit(functools.partial(step_lib.train_step, model=model, tx=tx, accum_steps=accum))
    results[accum] = step(start, batch)
  (full, m1), (acc, m4) = results[1], results[4]
  assert float(m4["loss"]) == pytest.approx(float(m1["loss"]), abs=1e-6)
  assert float(m4["grad_norm"]) == pytest.approx(float(m1["grad_norm"]), rel=1e-5)
  assert float(m4["tokens"]) == float(m1["tokens"]) == 8 * 13 - 3 * 5
  for p, a, b in zip(jax.tree.leaves(start.params), jax.tree.leaves(full.params),
                     jax.tree.leaves(acc.params)):
    np.testing.assert_allclose(np.asarray(p) - b, np.asarray(p) - a, rtol=1e-4, atol=1e-7)


def test_a_caption_group_is_the_same_step_as_its_pairs():
  """data.captions_per_image='group': tokens [b, k, l] against one encoding of each image
  give the loss and update of the b * k (image, caption) pairs with each image repeated."""
  config = demo.get_config("tiny")
  config.model.decoder.dropout = 0.0
  model = captioner.build(config, 13)
  tx = optax.sgd(1.0)
  start = jax.jit(functools.partial(state_lib.init_state, config, model, tx))(
      jax.random.PRNGKey(0))
  pairs = _batches(1)[0]  # 8 captions: 2 images x 4.
  images = pairs["image"][:2]
  grouped = {"image": images, "tokens": pairs["tokens"].reshape(2, 4, 14)}
  repeated = {"image": np.repeat(images, 4, axis=0), "tokens": pairs["tokens"]}
  step = jax.jit(functools.partial(step_lib.train_step, model=model, tx=tx))
  (a, ma), (b, mb) = step(start, grouped), step(start, repeated)
  assert float(ma["tokens"]) == float(mb["tokens"]) == 8 * 13 - 3 * 5
  assert float(ma["loss"]) == pytest.approx(float(mb["loss"]), rel=1e-6)
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_label_smoothing_matches_optax_smoothed_targets():
  rng = np.random.default_rng(1)
  logits = jnp.asarray(rng.normal(size=(3, 5, 11)), jnp.float32)
  targets = jnp.asarray(rng.integers(0, 11, (3, 5)), jnp.int32)
  total, count = losses.token_cross_entropy(logits, targets, label_smoothing=0.1)
  smoothed = optax.smooth_labels(jax.nn.one_hot(targets, 11), 0.1)
  per_token = optax.softmax_cross_entropy(logits, smoothed)  # [3, 5]
  weights = np.asarray(targets) != 0
  assert float(count) == weights.sum()
  assert float(total) == pytest.approx(float(np.sum(np.asarray(per_token) * weights)), rel=1e-6)


def test_ema_follows_the_parameters_by_the_warmed_up_decay():
  state, step = _setup(ema_decay=0.5)
  ema = jax.tree.map(np.asarray, state.params)
  for i, batch in enumerate(_batches(3)):
    state, _ = step(state, batch)
    d = min(0.5, (1 + i) / (10 + i))
    ema = jax.tree.map(lambda e, p, d=d: d * e + (1 - d) * np.asarray(p), ema, state.params)
  for a, b in zip(jax.tree.leaves(ema), jax.tree.leaves(state.ema_params)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  assert state.eval_variables["params"] is state.ema_params
  no_ema, _ = _setup()
  assert no_ema.eval_variables["params"] is no_ema.params


def test_the_scst_loss_accumulates_like_cross_entropy():
  """Samples [b, k, l] and advantages [b, k] split by image: micro-batches give the full
  batch's gradient, and the step's loss is the mean over captions."""
  from capflax import objectives
  config = demo.get_config("tiny")
  model = captioner.build(config, 13)
  tx = optax.sgd(1.0)
  start = jax.jit(functools.partial(state_lib.init_state, config, model, tx))(
      jax.random.PRNGKey(0))
  rng = np.random.default_rng(2)
  tokens = rng.integers(4, 13, (8, 3, 14)).astype(np.int32)
  tokens[..., 0] = 1
  tokens[:, 0, 6:] = 0  # Shorter samples.
  batch = {"image": rng.integers(0, 256, (8, 16, 16, 3)).astype(np.uint8), "tokens": tokens,
           "advantages": rng.normal(size=(8, 3)).astype(np.float32)}
  results = {}
  for accum in (1, 2):
    step = jax.jit(functools.partial(step_lib.train_step, model=model, tx=tx, accum_steps=accum,
                                     loss=objectives.self_critical()))
    results[accum] = step(start, batch)
  (full, m1), (acc, m2) = results[1], results[2]
  assert float(m1["tokens"]) == float(m2["tokens"]) == 8 * 3 * 13 - 8 * 8
  assert float(m2["loss"]) == pytest.approx(float(m1["loss"]), rel=1e-5)
  assert float(m2["entropy"]) == pytest.approx(float(m1["entropy"]), rel=1e-5)
  total, count, _, _ = losses.policy_gradient(
      captioner.teacher_forced(model, start.variables, batch)[0], tokens[..., 1:],
      batch["advantages"])
  assert float(count) == 24 and float(m1["loss"]) == pytest.approx(float(total) / 24, rel=1e-5)
  for p, a, b in zip(jax.tree.leaves(start.params), jax.tree.leaves(full.params),
                     jax.tree.leaves(acc.params)):
    np.testing.assert_allclose(np.asarray(p) - b, np.asarray(p) - a, rtol=1e-4, atol=1e-7)
