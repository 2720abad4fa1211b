"""Transformer caption decoder: pre-LN, causal self-attention, cross-attention to image tokens.

With `decode=True` it runs one token per call against a `cache` collection: the causal
self-attention appends to its key/value cache and the cross-attention reuses the image
tokens' keys/values computed on the first (cache-allocating) call.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from capflax.models.attention import Attention
from capflax.models.vit import MlpBlock

POSITIONS = ("learned", "sinusoidal")  # config.model.decoder.positions


def sinusoidal(length: int, width: int) -> np.ndarray:
  """Fixed positions of Vaswani et al. (2017): [length, width]."""
  pos = np.arange(length)[:, None]
  freq = np.exp(-np.log(10_000.0) * np.arange(0, width, 2) / width)[None]
  table = np.zeros((length, width), np.float32)
  table[:, 0::2], table[:, 1::2] = np.sin(pos * freq), np.cos(pos * freq)
  return table


class DecoderBlock(nn.Module):
  mlp_dim: int
  num_heads: int
  dropout: float = 0.0
  dtype: Any = jnp.float32
  decode: bool = False

  @nn.compact
  def __call__(self, x, memory, mask, deterministic=True):
    drop = lambda y: nn.Dropout(self.dropout)(y, deterministic=deterministic)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = Attention(self.num_heads, self.dtype, decode=self.decode,
                  name="SelfAttention")(y, mask=mask)
    x = x + drop(y)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = Attention(self.num_heads, self.dtype, cache_kv=self.decode,
                  name="CrossAttention")(y, memory)
    x = x + drop(y)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    return x + drop(MlpBlock(self.mlp_dim, self.dropout, self.dtype)(y, deterministic))


class Decoder(nn.Module):
  """(image tokens [b, n, d], tokens [b, l]) -> next-token logits [b, l, vocab]."""
  vocab_size: int
  max_len: int  # Longest token sequence, BOS and EOS included.
  width: int
  depth: int
  mlp_dim: int
  num_heads: int
  positions: str = "learned"  # 'learned' | 'sinusoidal'
  tie_embeddings: bool = True
  dropout: float = 0.0
  dtype: Any = jnp.float32
  decode: bool = False
  remat: bool = False  # Recompute block activations in the backward pass (saves memory).

  @nn.compact
  def __call__(self, memory, tokens, positions=None, train=False):
    """positions: [l] indices of `tokens` in the sequence (default 0..l-1)."""
    if positions is None:
      positions = jnp.arange(tokens.shape[1])
    embed = nn.Embed(self.vocab_size, self.width, embedding_init=nn.initializers.normal(0.02),
                     name="embed")
    x = embed(tokens).astype(self.dtype)  # [b, l, d]
    if self.positions == "learned":
      table = self.param("pos_embedding", nn.initializers.normal(0.02), (self.max_len, self.width))
    elif self.positions == "sinusoidal":
      table = jnp.asarray(sinusoidal(self.max_len, self.width))
    else:
      raise ValueError(
          f"decoder positions must be 'learned' or 'sinusoidal', got {self.positions!r}.")
    x = x + table[positions].astype(self.dtype)[None]  # [b, l, d]
    x = nn.Dropout(self.dropout)(x, deterministic=not train)
    mask = None if self.decode else nn.make_causal_mask(tokens)  # [b, 1, l, l]
    # Argument 4 (`deterministic`, counting the module) is a Python bool: static under remat.
    block = nn.remat(DecoderBlock, static_argnums=(4,)) if self.remat else DecoderBlock
    for i in range(self.depth):
      x = block(self.mlp_dim, self.num_heads, self.dropout, self.dtype, self.decode,
                name=f"decoderblock_{i}")(x, memory, mask, not train)
    x = nn.LayerNorm(dtype=self.dtype, name="decoder_norm")(x)
    if self.tie_embeddings:
      logits = embed.attend(x)  # [b, l, vocab]
    else:
      logits = nn.Dense(self.vocab_size, dtype=self.dtype, name="logits")(x)
    return logits.astype(jnp.float32)
