"""Vision Transformer encoder with big_vision's parameter names.

Names follow big_vision's `models/vit.py` (`embedding`, `pos_embedding`, `cls`,
`Transformer/encoderblock_{i}/{LayerNorm_0, MultiHeadDotProductAttention_0, LayerNorm_1,
MlpBlock_0}`, `Transformer/encoder_norm`, `head`) so public checkpoints map onto it.
Every patch token goes to the decoder; the class token and head exist only so that
checkpoints carrying them load. The same module is the SigLIP image tower (no class
token; its MAP head is not needed for captioning) and, with `pre_norm`, QuickGELU and
LayerNorm epsilon 1e-5, OpenAI CLIP's (see `capflax.models.clip`).
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from capflax.models import pretrained
from capflax.models.attention import Attention
from capflax.models.encoder_spec import EncoderSpec

# name -> (width, depth, mlp_dim, heads), as published (Dosovitskiy et al.; Steiner et al.).
SIZES = {
    "Ti": (192, 12, 768, 3),
    "S": (384, 12, 1536, 6),
    "B": (768, 12, 3072, 12),
    "L": (1024, 24, 4096, 16),
    # SigLIP's shape-optimised sizes (Alabdulmohsin et al., 2023), as in big_vision.
    "So400m": (1152, 27, 4304, 16),
    "g-opt": (1536, 40, 6144, 16),
}

ACTIVATIONS = {
    "gelu": nn.gelu,  # tanh approximation: big_vision, vision_transformer, SigLIP.
    "quick_gelu": lambda x: x * nn.sigmoid(1.702 * x),  # OpenAI CLIP.
}


def parse_variant(variant: str) -> dict:
  """'B/16' -> dict(width=768, depth=12, mlp_dim=3072, num_heads=12, patch_size=16)."""
  size, _, patch = variant.partition("/")
  if size not in SIZES or not patch.isdigit():
    raise ValueError(f"unknown ViT variant {variant!r}; expected e.g. 'B/16' with size in "
                     f"{sorted(SIZES)}.")
  width, depth, mlp_dim, heads = SIZES[size]
  return dict(width=width, depth=depth, mlp_dim=mlp_dim, num_heads=heads, patch_size=int(patch))


STEMS = ("patch", "conv")
POSEMBS = ("learned", "sincos2d")


def posemb_sincos_2d(h: int, w: int, width: int, temperature: float = 10_000.0) -> np.ndarray:
  """Fixed 2-D sin-cos position embedding [h * w, width] (as in big_vision): a quarter of
  the channels each for sin and cos of the row and of the column."""
  if width % 4:
    raise ValueError(f"sincos2d position embedding needs a width divisible by 4, got {width}.")
  y, x = np.mgrid[:h, :w]  # [h, w]
  omega = 1.0 / temperature ** (np.arange(width // 4) / (width // 4 - 1 or 1))  # [width/4]
  y = y.reshape(-1)[:, None] * omega[None]  # [n, width/4]
  x = x.reshape(-1)[:, None] * omega[None]
  return np.concatenate([np.sin(x), np.cos(x), np.sin(y), np.cos(y)], axis=1).astype(np.float32)


class ConvStem(nn.Module):
  """3x3 stride-2 convolutions down to the patch grid (Xiao et al. 2021, "Early convolutions
  help transformers see better"): small objects are seen at full resolution before they
  are pooled into a token. Channels double from width / 2**(stages - 1) up to width."""
  width: int
  patch_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    stages = int(np.log2(self.patch_size))
    if 2 ** stages != self.patch_size:
      raise ValueError(f"the conv stem needs a power-of-two patch_size, got {self.patch_size}.")
    for i in range(stages):
      channels = self.width // 2 ** (stages - 1 - i)
      x = nn.gelu(nn.Conv(channels, (3, 3), strides=(2, 2), padding="SAME", dtype=self.dtype,
                          name=f"conv_{i}")(x))  # [b, h / 2**(i+1), w / 2**(i+1), c]
    return x


class MlpBlock(nn.Module):
  mlp_dim: int
  dropout: float = 0.0
  dtype: Any = jnp.float32
  activation: str = "gelu"

  @nn.compact
  def __call__(self, x, deterministic=True):
    width = x.shape[-1]
    init = dict(kernel_init=nn.initializers.xavier_uniform(),
                bias_init=nn.initializers.normal(stddev=1e-6), dtype=self.dtype)
    x = ACTIVATIONS[self.activation](nn.Dense(self.mlp_dim, **init)(x))  # [b, n, mlp]
    x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
    return nn.Dense(width, **init)(x)  # [b, n, d]


class EncoderBlock(nn.Module):
  mlp_dim: int
  num_heads: int
  dropout: float = 0.0
  dtype: Any = jnp.float32
  activation: str = "gelu"
  norm_epsilon: float = 1e-6
  scanned: bool = False  # Return (x, None), the (carry, output) pair nn.scan expects.

  @nn.compact
  def __call__(self, x, deterministic=True):
    y = nn.LayerNorm(self.norm_epsilon, dtype=self.dtype)(x)
    y = Attention(self.num_heads, dtype=self.dtype, name="MultiHeadDotProductAttention_0")(y)
    x = x + nn.Dropout(self.dropout)(y, deterministic=deterministic)
    y = nn.LayerNorm(self.norm_epsilon, dtype=self.dtype)(x)
    y = MlpBlock(self.mlp_dim, self.dropout, self.dtype, self.activation)(y, deterministic)
    x = x + nn.Dropout(self.dropout)(y, deterministic=deterministic)
    return (x, None) if self.scanned else x


class ViT(nn.Module):
  """Normalised image [b, h, w, 3] -> patch tokens [b, (h/p)*(w/p), width]."""
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
  stem: str = "patch"  # 'patch': one p x p convolution; 'conv': ConvStem, then a 1x1 one.
  posemb: str = "learned"  # 'learned' (checkpoints carry it) | 'sincos2d' (fixed)
  activation: str = "gelu"  # A key of ACTIVATIONS.
  norm_epsilon: float = 1e-6  # Of every LayerNorm: flax's 1e-6; 1e-5 for CLIP.
  patch_bias: bool = True  # CLIP's patch embedding has no bias.
  pre_norm: bool = False  # CLIP: LayerNorm `pre_norm` on the embedded tokens.

  @nn.compact
  def __call__(self, images, train=False):
    p = self.patch_size
    if self.stem == "conv":
      x = ConvStem(self.width, p, self.dtype, name="stem")(images)  # [b, h/p, w/p, width]
      p = 1
    elif self.stem == "patch":
      x = images
    else:
      raise ValueError(f"model.encoder.stem must be one of {STEMS}, got {self.stem!r}.")
    x = nn.Conv(self.width, (p, p), strides=(p, p), padding="VALID", use_bias=self.patch_bias,
                dtype=self.dtype, name="embedding")(x)  # [b, h/p, w/p, d]
    b, gh, gw, d = x.shape
    x = x.reshape(b, gh * gw, d)  # [b, n, d]
    if self.posemb == "sincos2d":
      pos = jnp.asarray(posemb_sincos_2d(gh, gw, d))[None]  # [1, n, d]
    elif self.posemb == "learned":
      pos = None
    else:
      raise ValueError(f"model.encoder.posemb must be one of {POSEMBS}, got {self.posemb!r}.")
    if self.class_token:
      cls = self.param("cls", nn.initializers.zeros, (1, 1, d)).astype(self.dtype)
      x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, d)), x], axis=1)  # [b, 1 + n, d]
      if pos is not None:
        pos = jnp.concatenate([jnp.zeros((1, 1, d)), pos], axis=1)  # [1, 1 + n, d]
    if pos is None:  # As in vision_transformer, the class token has a position too (n + 1 rows).
      pos = self.param("pos_embedding", nn.initializers.normal(stddev=1 / np.sqrt(d)),
                       (1, x.shape[1], d))
    x = x + pos.astype(self.dtype)
    if self.pre_norm:
      x = nn.LayerNorm(self.norm_epsilon, dtype=self.dtype, name="pre_norm")(x)
    x = nn.Dropout(self.dropout)(x, deterministic=not train)
    x = Transformer(self.depth, self.mlp_dim, self.num_heads, self.dropout, self.dtype,
                    self.remat, self.scan, self.activation, self.norm_epsilon,
                    name="Transformer")(x, train)
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
  activation: str = "gelu"
  norm_epsilon: float = 1e-6

  @nn.compact
  def __call__(self, x, train=False):
    # Argument 2 (`deterministic`, counting the module) is a Python bool: static under remat.
    block = nn.remat(EncoderBlock, static_argnums=(2,)) if self.remat else EncoderBlock
    if self.scan:  # Parameters [depth, ...]: names differ from the unscanned checkpoints'.
      stack = nn.scan(block, variable_axes={"params": 0}, split_rngs={"params": True,
                      "dropout": True}, in_axes=nn.broadcast, length=self.depth)
      x, _ = stack(self.mlp_dim, self.num_heads, self.dropout, self.dtype, self.activation,
                   self.norm_epsilon, scanned=True, name="encoderblock")(x, not train)
    else:
      for i in range(self.depth):
        x = block(self.mlp_dim, self.num_heads, self.dropout, self.dtype, self.activation,
                  self.norm_epsilon, name=f"encoderblock_{i}")(x, not train)
    return nn.LayerNorm(self.norm_epsilon, dtype=self.dtype, name="encoder_norm")(x)


SIZE_FIELDS = ("variant", "width", "depth", "mlp_dim", "num_heads", "patch_size")


def sizes(enc) -> dict:
  """`enc.variant` ('B/16'), or with no variant the sizes in `enc` (width, depth, ...)."""
  return parse_variant(enc.variant) if enc.variant else dict(
      width=enc.width, depth=enc.depth, mlp_dim=enc.mlp_dim, num_heads=enc.num_heads,
      patch_size=enc.patch_size)


def build(enc, model) -> ViT:
  return ViT(**sizes(enc), class_token=enc.class_token, num_classes=enc.num_classes,
             dropout=enc.dropout, dtype=jnp.dtype(model.dtype), remat=model.remat,
             scan=model.scan, stem=enc.stem, posemb=enc.posemb)


# The original vision_transformer release's names -> big_vision's (ours).
_RENAMES = (
    (r"^Transformer/posembed_input/pos_embedding$", "pos_embedding"),
    (r"/MultiHeadDotProductAttention_1/", "/MultiHeadDotProductAttention_0/"),
    (r"/LayerNorm_2/", "/LayerNorm_1/"),
    (r"/MlpBlock_3/", "/MlpBlock_0/"),
)


def read(path: str, target) -> dict:
  """A vision_transformer (AugReg and the original release) or big_vision ViT `.npz`."""
  ckpt = pretrained.rename(pretrained.read_arrays(path), _RENAMES)
  return pretrained.fit(ckpt, target, path, "vit", optional=("cls", "head/", "pre_logits/"))


SPEC = EncoderSpec(
    build=build, read=read, scan=True,
    fields=SIZE_FIELDS + ("class_token", "num_classes", "dropout", "stem", "posemb"),
    formats="vision_transformer (AugReg) or big_vision ViT .npz")
