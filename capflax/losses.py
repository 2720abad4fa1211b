"""Caption losses, as sums over a (micro-)batch: the cross-entropy of reference captions and
the policy gradient of sampled ones."""

import jax
import jax.numpy as jnp

from capflax.data.tokenizer import PAD_ID


def token_cross_entropy(logits, targets, label_smoothing: float = 0.0):
  """Summed cross-entropy over non-PAD targets, and their count.

  logits [b, l, vocab], targets [b, l]. Sums, not means, so that batches, micro-batches
  and hosts combine exactly whatever their padding. With label smoothing e the target
  is (1 - e) one-hot + e uniform over the vocabulary.
  """
  weights = (targets != PAD_ID).astype(jnp.float32)  # [b, l]
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))  # [b, l, vocab]
  nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]  # [b, l]
  if label_smoothing:
    nll = (1.0 - label_smoothing) * nll - label_smoothing * jnp.mean(log_probs, axis=-1)
  return jnp.sum(nll * weights), jnp.sum(weights)


def policy_gradient(logits, targets, advantages):
  """REINFORCE with a baseline: -(reward - baseline) * log p(caption), summed over captions.

  logits [b, k, l, vocab] of k sampled captions per image, targets [b, k, l] (each caption's
  tokens up to and including EOS, PAD after), advantages [b, k] (reward - baseline; no
  gradient flows into them). log p(caption) sums its tokens' log-probabilities, EOS
  included. Returns (summed loss, captions, tokens, summed per-token entropy): sums, so that
  micro-batches and hosts combine exactly, as in `token_cross_entropy`.
  """
  weights = (targets != PAD_ID).astype(jnp.float32)  # [b, k, l]
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))  # [b, k, l, vocab]
  token_logp = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]  # [b, k, l]
  caption_logp = jnp.sum(token_logp * weights, axis=-1)  # [b, k]
  total = -jnp.sum(jax.lax.stop_gradient(advantages) * caption_logp)
  entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)  # [b, k, l]
  return total, jnp.float32(advantages.size), jnp.sum(weights), jnp.sum(entropy * weights)
