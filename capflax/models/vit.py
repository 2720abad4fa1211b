"""Vision Transformer encoder with big_vision's parameter names.

Names follow big_vision's `models/vit.py` (`embedding`, `pos_embedding`, `cls`,
`Transformer/encoderblock_{i}/{LayerNorm_0, MultiHeadDotProductAttention_0, LayerNorm_1,
MlpBlock_0}`, `Transformer/encoder_norm`, `head`) so public checkpoints map onto it.
Every patch token goes to the decoder; the class token and head exist only so that
checkpoints carrying them load.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from capflax.models.attention import Attention

# name -> (width, depth, mlp_dim, heads), as published (Dosovitskiy et al.; Steiner et al.).
SIZES = {
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
}


def parse_variant(variant: str) -> dict:
  """'B/16' -> dict(width=768, depth=12, mlp_dim=3072, num_heads=12, patch_size=16)."""
  size, _, patch = variant.partition("/")
  if size not in SIZES or not patch.isdigit():
    raise ValueError(f"unknown ViT variant {variant!r}; expected e.g. 'B/16' with size in "
                     f"{sorted(SIZES)}.")
  width, depth, mlp_dim, heads = SIZES[size]
  return dict(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=heads, patch_size=int(patch))


class MlpBlock(nn.Module):
  mlp_dim: int
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, deterministic=True):
    width = x.shape[-1]
    init = dict(kernel_init=nn.initializers.xavier_uniform(),
                bias_init=nn.initializers.normal(stddev=1e-6), dtype=self.dtype)
    x = nn.gelu(nn.Dense(self.mlp_dim, **init)(x))  # [b, n, mlp]
    x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
    return nn.Dense(width, **init)(x)  # [b, n, d]


class EncoderBlock(nn.Module):
  mlp_dim: int
  num_heads: int
  dropout: float = 0.0
  dtype: Any = jnp.float32
  scanned: bool = False  # Return (x, None), the (carry, output) pair nn.scan expects.

  @nn.compact
  def __call__(self, x, deterministic=True):
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = Attention(self.num_heads, dtype=self.dtype, name="MultiHeadDotProductAttention_0")(y)
    x = x + nn.Dropout(self.dropout)(y, deterministic=deterministic)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    y = MlpBlock(self.mlp_dim, self.dropout, self.dtype)(y, deterministic)
    x = x + nn.Dropout(self.dropout)(y, deterministic=deterministic)
    return (x, None) if self.scanned else x


class ViT(nn.Module):
  """Image [b, h, w, 3] in [-1, 1] -> patch tokens [b, (h/p)*(w/p), width]."""
  width: int
  depth: int
  mlp_dim: int
  num_heads: int
  patch_size: int
  class_token: bool = False
  num_classes: int = 0  # > 0 adds the classification head (checkpoint compatibility only).
  dropout: float = 0.0
  dtype: Any = jnp.float32
  remat: bool = False  # Recompute block activations in the backward pass (saves memory).
  scan: bool = False  # One stacked block under `Transformer/encoderblock`, compiled once.

  @nn.compact
  def __call__(self, images, train=False):
    p = self.patch_size
    x = nn.Conv(self.width, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype,
                name="embedding")(images)  # [b, h/p, w/p, d]
    b, gh, gw, d = x.shape
    x = x.reshape(b, gh * gw, d)  # [b, n, d]
    if self.class_token:
      cls = self.param("cls", nn.initializers.zeros, (1, 1, d)).astype(self.dtype)
      x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, d)), x], axis=1)  # [b, 1 + n, d]
    # As in vision_transformer, the class token has a position too (n + 1 rows).
    x = x + self.param("pos_embedding", nn.initializers.normal(stddev=1 / np.sqrt(d)),
                       (1, x.shape[1], d)).astype(self.dtype)
    x = nn.Dropout(self.dropout)(x, deterministic=not train)
    x = Transformer(self.depth, self.mlp_dim, self.num_heads, self.dropout, self.dtype,
                    self.remat, self.scan, name="Transformer")(x, train)
    if self.num_classes:
      nn.Dense(self.num_classes, name="head", kernel_init=nn.initializers.zeros)(x[:, 0])
    return x[:, 1:] if self.class_token else x  # [b, n, d]


class Transformer(nn.Module):
  depth: int
  mlp_dim: int
  num_heads: int
  dropout: float = 0.0
  dtype: Any = jnp.float32
  remat: bool = False
  scan: bool = False

  @nn.compact
  def __call__(self, x, train=False):
    # Argument 2 (`deterministic`, counting the module) is a Python bool: static under remat.
    block = nn.remat(EncoderBlock, static_argnums=(2,)) if self.remat else EncoderBlock
    if self.scan:  # Parameters [depth, ...]: names differ from the unscanned checkpoints'.
      stack = nn.scan(block, variable_axes={"params": 0}, split_rngs={"params": True,
                      "dropout": True}, in_axes=nn.broadcast, length=self.depth)
      x, _ = stack(self.mlp_dim, self.num_heads, self.dropout, self.dtype, scanned=True,
                   name="encoderblock")(x, not train)
      return nn.LayerNorm(dtype=self.dtype, name="encoder_norm")(x)
    for i in range(self.depth):
      x = block(self.mlp_dim, self.num_heads, self.dropout, self.dtype,
                name=f"encoderblock_{i}")(x, not train)
    return nn.LayerNorm(dtype=self.dtype, name="encoder_norm")(x)
