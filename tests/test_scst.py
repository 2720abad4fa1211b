"""The SCST step's host stage: its baselines by hand, and a few steps of the real (tiny)
captioner raising its reward."""

import jax
import numpy as np
import pytest

from capflax import scst, sharding, state as state_lib, step as step_lib
from capflax.data import dataset, pipeline
from capflax.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from configs import demo


def test_mean_of_the_other_samples_and_the_greedy_reward():
  rewards = np.array([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 4.0, 0.0]])
  np.testing.assert_allclose(scst.mean_of_others(rewards, None),
                             [[11 / 3, 10 / 3, 3.0, 2.0], [4 / 3, 4 / 3, 0.0, 4 / 3]])
  np.testing.assert_allclose(scst.greedy_reward(rewards, np.array([2.5, 1.0])),
                             [[2.5] * 4, [1.0] * 4])


@pytest.fixture(scope="module")
def tiny_scst(tiny_run):
  """The tiny run's data and vocabulary, an SCST config of it, and one train batch of 8."""
  workdir, _ = tiny_run
  config = demo.get_config("tiny")
  config.train.objective = "scst"
  config.optim.update(lr=1e-2, warmup_steps=0, schedule="constant")
  records = dataset.load_splits(config, workdir)["train"]
  vocab = dataset.saved_vocabulary(workdir)
  batch = next(pipeline.train_dataset(records, vocab, image_size=config.data.image_size,
                                      max_len=config.data.max_len, global_batch=8, seed=0,
                                      image_index=True))
  return config, records, vocab, batch


def test_the_update_batch_holds_the_samples_and_their_advantages(tiny_scst):
  config, records, vocab, batch = tiny_scst
  mesh = sharding.make_mesh()
  spec = state_lib.make_spec(config, len(vocab), mesh, state_lib.Durations(10, 0))
  stage = scst.Stage(config, spec.model, mesh, records, vocab)
  state = jax.jit(spec.init)(jax.random.PRNGKey(0))
  update, metrics = stage(state, batch)
  tokens, advantages = np.asarray(update["tokens"]), np.asarray(update["advantages"])
  assert tokens.shape == (8, 5, config.data.max_len + 2) and advantages.shape == (8, 5)
  assert (tokens[..., 0] == BOS_ID).all()
  for row in tokens.reshape(-1, tokens.shape[-1])[:, 1:]:  # EOS kept, PAD after it.
    end = np.flatnonzero((row == EOS_ID) | (row == PAD_ID))
    if len(end):
      assert (row[end[0] + (row[end[0]] == EOS_ID):] == PAD_ID).all()
  np.testing.assert_allclose(advantages.sum(1), 0.0, atol=1e-5)  # The mean baseline's.
  assert metrics["reward"] == pytest.approx(metrics["sample_cider_d"])  # No BLEU-4 weight.
  assert 0 <= metrics["no_eos"] <= 1 and metrics["sample_length"] > 0
  again, _ = stage(state, batch)  # The samples are a function of (rng, step).
  np.testing.assert_array_equal(np.asarray(again["tokens"]), tokens)
  # Greedy captions only on the steps that log (train.log_every=2: step 2, not step 1).
  assert "greedy_cider_d" not in metrics
  assert 0 <= stage(state.replace(step=state.step + 1), batch)[1]["greedy_cider_d"] <= 10


def test_a_few_steps_raise_the_mean_reward_of_the_batch(tiny_scst):
  config, records, vocab, batch = tiny_scst
  mesh = sharding.make_mesh()
  spec = state_lib.make_spec(config, len(vocab), mesh, state_lib.Durations(10, 0))
  step = step_lib.make(config, spec, mesh, records, vocab)
  state = jax.jit(spec.init)(jax.random.PRNGKey(0))
  images = sharding.global_batch({"image": batch["image"]}, mesh)["image"]
  index = np.repeat(batch["image_index"], 5)

  def mean_reward(state):  # 5 fresh samples per image, the same key before and after.
    tokens = np.asarray(step.host_stage.sample(state.variables, images, jax.random.PRNGKey(9)))
    rewards, _ = step.host_stage.reward(index, scst.reward.caption_words(
        tokens.reshape(-1, tokens.shape[-1]), True))
    return rewards.mean()

  before = mean_reward(state)
  for _ in range(20):
    state, metrics = step(state, batch)
  assert np.isfinite(metrics["loss"]) and metrics["entropy"] > 0
  assert mean_reward(state) > 1.4 * before  # 0.15 -> 0.26 when written
