"""Caption losses."""

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
