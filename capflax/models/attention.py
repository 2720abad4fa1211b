"""Multi-head attention with a KV cache, laid out like flax's MultiHeadDotProductAttention.

Parameter names and shapes (`query`, `key`, `value`: [d, heads, d/heads]; `out`:
[heads, d/heads, d]) equal flax's, so public ViT checkpoints load unchanged. Two cache
modes serve decoding: `decode=True` appends one step's key/value per call (causal
self-attention); `cache_kv=True` computes the key/value of a fixed memory (the image
tokens) once and reuses them on every later step (cross-attention).
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class Attention(nn.Module):
  num_heads: int
  dtype: Any = jnp.float32
  dropout: float = 0.0
  decode: bool = False
  cache_kv: bool = False

  @nn.compact
  def __call__(self, x, memory=None, mask=None, deterministic=True):
    """x: [b, q, d]; memory: [b, k, d] (None: self-attention); mask: [b, 1|h, q, k]."""
    width = x.shape[-1]
    if width % self.num_heads:
      raise ValueError(f"width {width} is not divisible by {self.num_heads} heads.")
    dense = functools.partial(nn.DenseGeneral, features=(self.num_heads, width // self.num_heads),
                              dtype=self.dtype, kernel_init=nn.initializers.xavier_uniform())
    q = dense(name="query")(x)  # [b, q, h, dh]
    if self.cache_kv and self.has_variable("cache", "cached_key"):
      k = self.get_variable("cache", "cached_key")  # [b, k, h, dh]
      v = self.get_variable("cache", "cached_value")
    else:
      source = x if memory is None else memory
      k = dense(name="key")(source)  # [b, k, h, dh]
      v = dense(name="value")(source)
      if self.cache_kv:
        self.put_variable("cache", "cached_key", k)
        self.put_variable("cache", "cached_value", v)
    if self.decode:
      k, v, mask = self._append_to_cache(k, v, mask)

    q = q / jnp.sqrt(q.shape[-1]).astype(self.dtype)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k)  # [b, h, q, k]
    if mask is not None:
      logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    weights = jax.nn.softmax(logits.astype(jnp.float32)).astype(self.dtype)  # [b, h, q, k]
    # Kept only when applied with mutable=['intermediates']: the decoder's attention maps.
    self.sow("intermediates", "attention_weights", weights)
    if self.dropout > 0:
      weights = nn.Dropout(self.dropout)(weights, deterministic=deterministic)
    y = jnp.einsum("bhqk,bkhd->bqhd", weights, v)  # [b, q, h, dh]
    return nn.DenseGeneral(width, axis=(-2, -1), dtype=self.dtype, name="out",
                           kernel_init=nn.initializers.xavier_uniform())(y)  # [b, q, d]

  def _append_to_cache(self, k, v, mask):
    """Writes one step's key/value at the cache index; masks the slots not yet written.

    The first call (with the full-length input) only allocates the cache.
    """
    initialized = self.has_variable("cache", "cached_key")
    cached_k = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)  # [b, L, h, dh]
    cached_v = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
    index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
    if not initialized:
      return k, v, mask
    if k.shape[1] != 1:
      raise ValueError(f"cached decoding takes one step at a time, got {k.shape[1]}.")
    i = index.value
    cached_k.value = jax.lax.dynamic_update_slice_in_dim(cached_k.value, k, i, axis=1)
    cached_v.value = jax.lax.dynamic_update_slice_in_dim(cached_v.value, v, i, axis=1)
    index.value = i + 1
    length = cached_k.value.shape[1]
    written = (jnp.arange(length) <= i)[None, None, None, :]  # [1, 1, 1, L]
    return cached_k.value, cached_v.value, written
