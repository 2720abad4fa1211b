"""The policy gradient on a model-free toy whose exact REINFORCE gradient is known: a
categorical policy over every caption of up to 3 tokens, the expected reward summed over
all of them and differentiated directly."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from capflax import losses, scst
from capflax.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

V, L = 6, 3  # Tokens (PAD, BOS, EOS, UNK, two words); the longest caption.
WORDS = (4, 5)
# Only EOS and the two words have mass: then the captions below are every outcome.
ALLOWED = jnp.full((V,), -1e9).at[jnp.array((EOS_ID,) + WORDS)].set(0.0)


def all_captions() -> np.ndarray:
  """[15, L]: every caption, ending in EOS within L tokens or running to L words; PAD after."""
  out = [w + (EOS_ID,) for k in range(L) for w in itertools.product(WORDS, repeat=k)]
  out += list(itertools.product(WORDS, repeat=L))
  return np.array([list(c) + [PAD_ID] * (L - len(c)) for c in out], np.int32)


def logits_of(theta, captions):
  """The policy's logits [n, L, V] at each position: theta[t, previous token] (BOS first)."""
  prev = jnp.concatenate([jnp.full((len(captions), 1), BOS_ID), captions[:, :-1]], 1)  # [n, L]
  return theta[jnp.arange(L)[None], prev] + ALLOWED  # [n, L, V]


def probabilities(theta, captions):
  """[n]: p(y), the product of each token's softmax probability, up to and including EOS."""
  probs = jax.nn.softmax(logits_of(theta, captions))  # [n, L, V]
  token = jnp.take_along_axis(probs, captions[..., None], -1)[..., 0]  # [n, L]
  return jnp.prod(jnp.where(captions != PAD_ID, token, 1.0), axis=1)


def expected_reward(theta, captions, rewards):
  """E[r] = sum_y p(y) r(y), over every caption."""
  return jnp.sum(probabilities(theta, captions) * rewards)


@pytest.fixture(scope="module")
def toy():
  rng = np.random.default_rng(0)
  theta = jnp.asarray(rng.normal(size=(L, V, V)), jnp.float32)
  captions = all_captions()
  rewards = rng.uniform(0, 3, len(captions))
  return theta, captions, rewards


def test_the_captions_are_every_outcome(toy):
  theta, captions, _ = toy
  assert len({tuple(c) for c in captions.tolist()}) == 15
  assert float(expected_reward(theta, captions, np.ones(15))) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("baseline", [0.0, 1.7])
def test_weighting_every_caption_by_its_probability_gives_the_exact_gradient(toy, baseline):
  """sum_y p(y) (r(y) - b) grad log p(y) = grad E[r]: the loss's gradient is its negative,
  for any constant baseline b."""
  theta, captions, rewards = toy
  exact = jax.jit(jax.grad(expected_reward))(theta, captions, rewards)
  p = np.asarray(probabilities(theta, captions))  # [15]
  advantages = jnp.asarray(p * (rewards - baseline), jnp.float32)

  def loss(theta):
    return losses.policy_gradient(logits_of(theta, captions)[None], captions[None],
                                  advantages[None])[0]

  np.testing.assert_allclose(jax.jit(jax.grad(loss))(theta), -exact, rtol=1e-4, atol=1e-6)


def test_the_sums_it_returns(toy):
  theta, captions, rewards = toy
  logits = logits_of(theta, captions)[None]
  total, count, tokens, entropy = jax.jit(losses.policy_gradient)(
      logits, captions[None], jnp.ones((1, 15)))
  assert float(count) == 15 and float(tokens) == np.sum(captions != PAD_ID)
  logp = jax.nn.log_softmax(logits)
  mask = captions[None] != PAD_ID
  caption_logp = np.sum(np.take_along_axis(np.asarray(logp), captions[None, ..., None], -1)[..., 0]
                        * mask, -1)
  assert float(total) == pytest.approx(-caption_logp.sum(), rel=1e-6)
  want = -np.sum(np.exp(logp) * logp, -1)[mask].sum()
  assert float(entropy) == pytest.approx(want, rel=1e-5)


def test_sampled_captions_with_the_mean_of_the_others_baseline_are_unbiased(toy):
  """5 samples for each of 20,000 images from the policy, each sample's baseline the mean
  reward of its image's 4 others (scst.mean_of_others): the loss's gradient (over the
  captions' count) is -grad E[r] within 5 standard errors of the per-image estimates."""
  theta, captions, rewards = toy
  exact = np.asarray(jax.jit(jax.grad(expected_reward))(theta, captions, rewards))
  p = np.asarray(probabilities(theta, captions), np.float64)  # [15]
  n, s = 20_000, 5
  drawn = np.random.default_rng(1).choice(len(captions), size=(n, s), p=p / p.sum())  # [n, s]
  r = rewards[drawn]  # [n, s]
  advantages = jnp.asarray(r - scst.mean_of_others(r, None), jnp.float32)
  samples = jnp.asarray(captions[drawn])  # [n, s, L]

  def image_loss(theta, caps, adv):  # One image's s samples.
    return losses.policy_gradient(logits_of(theta, caps)[None], caps[None], adv[None])[0] / s

  per_image = np.asarray(jax.jit(jax.vmap(jax.grad(image_loss), (None, 0, 0)))(
      theta, samples, advantages))
  mean, se = per_image.mean(0), per_image.std(0) / np.sqrt(n)  # [L, V, V]
  assert np.all(np.abs(mean + exact) <= 5 * se + 1e-6)
  cosine = -np.sum(mean * exact) / np.linalg.norm(mean) / np.linalg.norm(exact)
  assert cosine > 0.99
