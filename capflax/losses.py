"""Caption losses."""

import jax
import jax.numpy as jnp

from capflax.data.tokenizer import PAD_ID


def token_cross_entropy(logits, targets):
  """Summed cross-entropy over non-PAD targets, and their count.

  logits [b, l, vocab], targets [b, l]. Sums, not means, so that batches and hosts
  combine exactly whatever their padding.
  """
  weights = (targets != PAD_ID).astype(jnp.float32)  # [b, l]
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))  # [b, l, vocab]
  nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]  # [b, l]
  return jnp.sum(nll * weights), jnp.sum(weights)
