"""Per-part optimizer: a frozen encoder and an encoder learning-rate multiplier."""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from capflax import optim, state as state_lib, step as step_lib
from capflax.models import captioner, encoders
from configs import demo


def _config(**encoder):
  config = demo.get_config("tiny")
  config.model.encoder.update(**encoder)
  return config


def _setup(config):
  model = captioner.build(config, vocab_size=13)
  tx = optim.make(config, config.train.num_steps, config.optim.warmup_steps)
  state = jax.jit(functools.partial(state_lib.init_state, config, model, tx))(
      jax.random.PRNGKey(0))
  s, b = config.data.image_size, config.train.batch_size
  rng = np.random.default_rng(0)
  batch = {"image": rng.integers(0, 256, (b, s, s, 3), np.uint8),
           "tokens": rng.integers(4, 13, (b, config.data.max_len + 2), np.int32)}
  step = jax.jit(functools.partial(step_lib.train_step, model=model, tx=tx))
  return state, batch, step


def test_frozen_encoder_stays_bit_identical_and_has_no_optimizer_state():
  state, batch, step = _setup(_config(frozen=True))
  start = jax.tree.map(np.asarray, state.params)
  for _ in range(3):
    state, metrics = step(state, batch)
  assert np.isfinite(metrics["loss"])
  for a, b in zip(jax.tree.leaves(start["encoder"]), jax.tree.leaves(state.params["encoder"])):
    np.testing.assert_array_equal(a, b)
  assert not np.allclose(start["decoder"]["embed"]["embedding"],
                         state.params["decoder"]["embed"]["embedding"])
  rest = sum(x.size for k, v in start.items() if k != "encoder" for x in jax.tree.leaves(v))
  moments = sum(x.size for x in jax.tree.leaves(state.opt_state) if x.ndim)
  assert moments == 2 * rest  # Adam's mu and nu for the bridge and decoder only.


def test_frozen_encoder_gradient_is_not_computed():
  """Freezing removes the encoder's backward pass: at least its forward cost in FLOPs."""
  flops = {}
  for frozen in (False, True):
    config = _config(frozen=frozen)
    state, batch, step = _setup(config)
    flops[frozen] = step.lower(state, batch).compile().cost_analysis()["flops"]
  encoder = encoders.build_encoder(config)
  images = jnp.zeros(batch["image"].shape, jnp.float32)
  forward = jax.jit(lambda p, x: encoder.apply({"params": p}, x)).lower(
      state.params["encoder"], images).compile().cost_analysis()["flops"]
  assert flops[False] - flops[True] >= forward


def test_encoder_learning_rate_multiplier_scales_only_encoder_updates():
  config = _config()
  params = _setup(config)[0].params
  grads = jax.tree.map(lambda p: jnp.asarray(np.random.default_rng(p.size).normal(size=p.shape),
                                             p.dtype), params)
  updates = {}
  for mult in (1.0, 0.1):
    config.optim.encoder_lr_mult = mult
    tx = optim.make(config, 100, config.optim.warmup_steps)
    opt_state = tx.init(params)
    for _ in range(2):  # Step 0 has learning rate 0 (warmup from 0).
      u, opt_state = jax.jit(tx.update)(grads, opt_state, params)
    updates[mult] = u
  assert optax.tree.norm(updates[1.0]["encoder"]) > 0
  full, slow = updates[1.0], updates[0.1]
  for a, b in zip(jax.tree.leaves(full["encoder"]), jax.tree.leaves(slow["encoder"])):
    np.testing.assert_allclose(b, 0.1 * a, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(full["decoder"]), jax.tree.leaves(slow["decoder"])):
    np.testing.assert_array_equal(a, b)


def test_remat_keeps_names_and_values():
  config = _config()
  state, batch, step = _setup(config)
  config.model.remat = True
  remat_state, _, remat_step = _setup(config)
  names = lambda t: sorted(flax.traverse_util.flatten_dict(t))
  assert names(remat_state.params) == names(state.params)
  (_, a), (_, b) = step(state, batch), remat_step(remat_state, batch)
  np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-6)
  np.testing.assert_allclose(a["grad_norm"], b["grad_norm"], rtol=1e-5)


def test_weight_decay_skips_norms_and_biases_of_scanned_blocks_too():
  config = _config()
  config.model.scan = True
  params = _setup(config)[0].params
  mask = optim.decay_mask(params, _config().optim.weight_decay_pattern)["encoder"]["Transformer"]["encoderblock"]
  assert mask["MlpBlock_0"]["Dense_0"]["kernel"]
  assert mask["MultiHeadDotProductAttention_0"]["out"]["kernel"]
  assert not mask["LayerNorm_0"]["scale"] and not mask["MlpBlock_0"]["Dense_0"]["bias"]
  assert not mask["MultiHeadDotProductAttention_0"]["query"]["bias"]  # [depth, heads, head_dim]


def test_weight_decay_only_on_kernels():
  params = _setup(_config())[0].params
  decayed = {"/".join(path) for path, on in
             flax.traverse_util.flatten_dict(optim.decay_mask(params, _config().optim.weight_decay_pattern)).items() if on}
  assert decayed and all(name.endswith("/kernel") for name in decayed)
  assert "decoder/embed/embedding" not in decayed
  assert "decoder/decoderblock_0/SelfAttention/query/kernel" in decayed


@pytest.mark.parametrize("name", ["cosine", "linear", "rsqrt", "constant"])
def test_schedules_against_their_formulas(name):
  config = _config()
  config.optim.update(lr=2.0, schedule=name, end_lr_fraction=0.1)
  total, warmup = 110, 10
  lr = optim.schedule(config, total, warmup)
  for step in (0, 5, 10, 35, 60, 109, 110):
    if step < warmup:
      expected = 2.0 * step / warmup
    else:
      t = (step - warmup) / (total - warmup)
      expected = {"cosine": 2.0 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t))),
                  "linear": 2.0 * (1 - 0.9 * t),
                  "rsqrt": 2.0 / np.sqrt(step / warmup),
                  "constant": 2.0}[name]
    assert float(lr(step)) == pytest.approx(expected, rel=1e-5), step


def test_unknown_schedule_is_named():
  config = _config()
  config.optim.schedule = "step"
  with pytest.raises(ValueError, match="config.optim.schedule must be one of .* got 'step'"):
    optim.schedule(config, 10, 1)


def test_durations_in_epochs():
  config = _config()  # batch 8
  config.train.num_epochs, config.optim.warmup_epochs = 2.5, 0.5
  length = state_lib.durations(config, epoch_size=355)
  assert (length.total_steps, length.warmup_steps) == (111, 23)  # ceil(887.5 / 8), ceil(177.5 / 8)
  config.train.num_epochs, config.optim.warmup_epochs = 0.0, 0.0
  # num_steps, warmup_steps; the tiny config's 3 curve points: every 2 steps.
  assert state_lib.durations(config, 355) == state_lib.Durations(6, 2, 2)


def test_durations_from_a_flops_budget():
  """The whole number of steps whose FLOPs come closest to the budget; warmup and the curve
  spacing follow the steps."""
  config = _config()  # batch 8
  config.train.flops_budget, config.optim.warmup_fraction = 1e9, 0.1
  config.train.curve_points = 4
  length = state_lib.durations(config, 355, flops_per_example=3e6)
  assert length == state_lib.Durations(42, 4, 10)  # 1e9 / 2.4e7 = 41.7; 4.2; 42 // 4
  config.train.flops_budget = 1e6  # Less than one step's FLOPs: one step.
  assert state_lib.durations(config, 355, 3e6).total_steps == 1
  with pytest.raises(ValueError, match="flops_budget needs the training FLOPs per example"):
    state_lib.durations(config, 355)
  config.optim.warmup_fraction = 1.0
  with pytest.raises(ValueError, match=r"warmup_fraction must be in \[0, 1\), got 1.0"):
    state_lib.durations(config, 355, 3e6)


def test_weight_decay_pattern_can_take_embeddings_too():
  config = _config()
  params = _setup(config)[0].params
  decayed = {"/".join(path) for path, on in flax.traverse_util.flatten_dict(
      optim.decay_mask(params, r"(^|/)(kernel|embedding)$")).items() if on}
  assert "decoder/embed/embedding" in decayed
  assert not any(name.endswith(("/bias", "/scale")) for name in decayed)
