"""Model-agnostic search over a token-at-a-time model with a cache.

A model enters only through `tokens_to_logits(tokens [b], position, cache) -> (logits
[b, vocab], cache)`, so the searches are testable with hand-built toy models.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from capflax.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

TokensToLogits = Callable[[jax.Array, jax.Array, Any], tuple[jax.Array, Any]]


def greedy(tokens_to_logits: TokensToLogits, cache: Any, batch_size: int, max_len: int) -> jax.Array:
  """Argmax decoding; [b, max_len] tokens, EOS kept, PAD after it.

  One `lax.while_loop` that stops as soon as every sequence has emitted EOS.
  """
  seq = jnp.full((batch_size, max_len + 1), PAD_ID, jnp.int32).at[:, 0].set(BOS_ID)  # [b, 1 + T]
  done = jnp.zeros((batch_size,), bool)  # [b]

  def cond(state):
    i, _, _, done = state
    return (i < max_len) & ~jnp.all(done)

  def body(state):
    i, seq, cache, done = state
    logits, cache = tokens_to_logits(seq[:, i], i, cache)  # [b, vocab]
    token = jnp.where(done, PAD_ID, jnp.argmax(logits, axis=-1).astype(jnp.int32))  # [b]
    seq = jax.lax.dynamic_update_slice_in_dim(seq, token[:, None], i + 1, axis=1)
    return i + 1, seq, cache, done | (token == EOS_ID)

  _, seq, _, _ = jax.lax.while_loop(cond, body, (jnp.array(0), seq, cache, done))
  return seq[:, 1:]  # [b, T]
