"""ResNet image encoders: ResNet v1.5 (BatchNorm) and BiT's ResNetV2 (GroupNorm + StdConv).

Both return the last feature map as tokens [b, h/32 * w/32, c]. ResNet v1.5 is He et
al.'s ResNet with the stride on the 3x3 convolution; its BatchNorm statistics live in
the `batch_stats` collection. BiT (Kolesnikov et al., 2020) is a pre-activation ResNet
with GroupNorm and weight-standardised convolutions; its modules are named like the
public BiT `.npz` files (`root_block/standardized_conv2d`, `block1/unit01/a/group_norm`,
`block1/unit01/a/proj/standardized_conv2d`, `group_norm`, `head/conv2d`) minus their
`resnet/` prefix, so `capflax.models.pretrained` maps them one to one.
"""

import functools
from typing import Any

import re

import flax.linen as nn
import jax.numpy as jnp

from capflax.models import pretrained
from capflax.models.encoder_spec import EncoderSpec

# depth -> (units per stage, bottleneck units?), as published (He et al., 2016).
DEPTHS = {
    18: ((2, 2, 2, 2), False),
    26: ((2, 2, 2, 2), True),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
}


def parse_variant(family: str, variant: str) -> dict:
  """resnet '50' -> dict(depth=50); bit 'R50x1' -> dict(depth=50, width=1)."""
  text = variant.upper().removeprefix("R") if family == "bit" else variant
  depth, _, width = text.partition("X")
  ok = depth.isdigit() and int(depth) in DEPTHS and (
      width.isdigit() if family == "bit" else not width)
  if not ok or (family == "bit" and not DEPTHS[int(depth)][1]):
    example = "'R50x1'" if family == "bit" else "'50'"
    depths = sorted(d for d, (_, bottleneck) in DEPTHS.items() if bottleneck or family != "bit")
    raise ValueError(f"unknown {family} variant {variant!r}; expected e.g. {example} with "
                     f"depth in {depths}.")
  return dict(depth=int(depth), width=int(width)) if family == "bit" else dict(depth=int(depth))


# ----------------------------------------------------------------------------- ResNet v1.5


class ResidualUnit(nn.Module):
  """Basic (two 3x3 convs: ResNet-18/34) or bottleneck (1x1 -> 3x3 -> 1x1 with 4x the
  features, the 3x3 strided: the "v1.5" change) unit, BatchNorm after each conv."""
  features: int
  strides: int = 1
  bottleneck: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             epsilon=1e-5, dtype=self.dtype)
    s = (self.strides, self.strides)
    f = self.features
    layers = ([(f, (1, 1), (1, 1)), (f, (3, 3), s), (4 * f, (1, 1), (1, 1))] if self.bottleneck
              else [(f, (3, 3), s), (f, (3, 3), (1, 1))])  # (features, kernel, strides)
    y = x
    for i, (features, kernel, strides) in enumerate(layers):
      last = i == len(layers) - 1  # Zero-initialised scale: each unit starts as the identity.
      y = norm(scale_init=nn.initializers.zeros if last else nn.initializers.ones)(
          conv(features, kernel, strides)(y))
      y = y if last else nn.relu(y)
    if x.shape[-1] != y.shape[-1] or self.strides != 1:
      x = norm(name="norm_proj")(conv(y.shape[-1], (1, 1), s, name="conv_proj")(x))
    return nn.relu(x + y)


class ResNet(nn.Module):
  """ResNet v1.5: image [b, h, w, 3] -> last feature map as tokens [b, h/32 * w/32, c]."""
  depth: int = 50
  num_classes: int = 0  # > 0 adds the classification head (parameter-count checks only).
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images, train=False):
    stages, bottleneck = DEPTHS[self.depth]
    name = "BottleneckBlock" if bottleneck else "BasicBlock"
    x = nn.Conv(64, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], use_bias=False, dtype=self.dtype,
                name="conv_init")(images)  # [b, h/2, w/2, 64]
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                     dtype=self.dtype, name="bn_init")(x)
    x = nn.max_pool(nn.relu(x), (3, 3), (2, 2), padding=[(1, 1), (1, 1)])  # [b, h/4, w/4, 64]
    i = 0
    for stage, units in enumerate(stages):
      for unit in range(units):
        strides = 2 if stage > 0 and unit == 0 else 1
        x = ResidualUnit(64 * 2**stage, strides, bottleneck, self.dtype,
                         name=f"{name}_{i}")(x, train)
        i += 1
    b, h, w, c = x.shape  # [b, h/32, w/32, c]
    if self.num_classes:
      nn.Dense(self.num_classes, dtype=self.dtype, name="head")(jnp.mean(x, axis=(1, 2)))
    return x.reshape(b, h * w, c)  # [b, n, c]


# ----------------------------------------------------------------------------- BiT ResNetV2


def _standardize(x, axis, eps):
  x = x - jnp.mean(x, axis=axis, keepdims=True)
  return x / jnp.sqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps)


class StdConv(nn.Conv):
  """A bias-free convolution whose kernel is standardised per output channel."""
  use_bias: bool = False

  def param(self, name, *args, **kwargs):
    value = super().param(name, *args, **kwargs)
    return _standardize(value, axis=(0, 1, 2), eps=1e-10) if name == "kernel" else value


class Wrapped(nn.Module):
  """One layer under an extra name scope (`proj/standardized_conv2d`, `head/conv2d`)."""
  layer: Any  # () -> nn.Module
  inner_name: str

  @nn.compact
  def __call__(self, x):
    return self.layer(name=self.inner_name)(x)


class Stage(nn.Module):
  """Units `unit01`, `unit02`, ...; the first one strides."""
  features: int
  units: int
  strides: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    for u in range(self.units):
      x = BiTUnit(self.features, self.strides if u == 0 else 1, self.dtype,
                  name=f"unit{u + 1:02d}")(x)
    return x


class PreActConv(nn.Module):
  """GroupNorm -> ReLU -> StdConv, one of a unit's parts `a`, `b`, `c`.

  Part `a` also holds the shortcut's projection (`a/proj`), which reads the
  pre-activated input, as in BiT.
  """
  features: int
  kernel: int
  strides: int = 1
  proj_features: int = 0  # > 0: also return the projected shortcut.
  proj_strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.GroupNorm(num_groups=32, epsilon=1e-5, dtype=self.dtype,
                             name="group_norm")(x))
    k, s = self.kernel, self.strides
    y = StdConv(self.features, (k, k), (s, s), padding=[(k // 2, k // 2)] * 2, dtype=self.dtype,
                name="standardized_conv2d")(x)
    if not self.proj_features:
      return y, None
    proj = Wrapped(functools.partial(StdConv, self.proj_features, (1, 1),
                                     (self.proj_strides,) * 2, dtype=self.dtype),
                   "standardized_conv2d", name="proj")
    return y, proj(x)


class BiTUnit(nn.Module):
  """Pre-activation bottleneck unit; the stride sits on the 3x3 convolution."""
  features: int  # Bottleneck width; the unit outputs 4x as many.
  strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    out = 4 * self.features
    project = x.shape[-1] != out or self.strides != 1
    y, shortcut = PreActConv(self.features, 1, proj_features=out if project else 0,
                             proj_strides=self.strides, dtype=self.dtype, name="a")(x)
    y, _ = PreActConv(self.features, 3, self.strides, dtype=self.dtype, name="b")(y)
    y, _ = PreActConv(out, 1, dtype=self.dtype, name="c")(y)
    return y + (x if shortcut is None else shortcut)


class BiT(nn.Module):
  """BiT ResNetV2: image [b, h, w, 3] in [-1, 1] -> tokens [b, h/32 * w/32, 2048 * width]."""
  depth: int = 50
  width: int = 1
  num_classes: int = 0  # > 0 adds the 1x1-conv head (checkpoint compatibility only).
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images, train=False):
    del train  # GroupNorm behaves the same in training and evaluation.
    stages, _ = DEPTHS[self.depth]
    w = 64 * self.width
    root = Wrapped(functools.partial(StdConv, w, (7, 7), (2, 2), padding=[(3, 3), (3, 3)],
                                     dtype=self.dtype), "standardized_conv2d", name="root_block")
    # BiT pads with zeros before the max pool (big_transfer's bit_jax and bit_pytorch), not
    # with -inf: the root has no ReLU, so the border differs.
    x = jnp.pad(root(images), ((0, 0), (1, 1), (1, 1), (0, 0)))  # [b, h/2 + 2, w/2 + 2, w]
    x = nn.max_pool(x, (3, 3), (2, 2), padding="VALID")  # [b, h/4, w/4, w]
    for stage, units in enumerate(stages):
      x = Stage(w * 2**stage, units, 2 if stage > 0 else 1, self.dtype,
                name=f"block{stage + 1}")(x)
    x = nn.relu(nn.GroupNorm(num_groups=32, epsilon=1e-5, dtype=self.dtype,
                             name="group_norm")(x))  # [b, h/32, w/32, c]
    b, h, w_, c = x.shape
    if self.num_classes:
      head = Wrapped(functools.partial(nn.Conv, self.num_classes, (1, 1), dtype=self.dtype),
                     "conv2d", name="head")
      head(jnp.mean(x, axis=(1, 2), keepdims=True))  # [b, 1, 1, classes]
    return x.reshape(b, h * w_, c)  # [b, n, c]


# ----------------------------------------------------------------------------- registry


def _bit_names(raw: dict) -> dict:
  """big_transfer's `resnet/.../group_norm/{gamma,beta}` -> ours (`.../{scale,bias}`)."""
  out = {}
  for name, value in raw.items():
    name = name.removeprefix("resnet/")
    name = re.sub(r"/standardized_conv2d_\d+/", "/standardized_conv2d/", name)
    out[re.sub(r"/gamma$", "/scale", re.sub(r"/beta$", "/bias", name))] = value
  return out


def read_bit(path: str, target) -> dict:
  """A big_transfer BiT `.npz` (BiT-S / BiT-M)."""
  return pretrained.fit(_bit_names(pretrained.read_arrays(path)), target, path, "bit",
                        optional=("head/",))


RESNET_SPEC = EncoderSpec(
    build=lambda enc, model: ResNet(**parse_variant("resnet", enc.variant),
                                    num_classes=enc.num_classes, dtype=jnp.dtype(model.dtype)),
    fields=("variant", "num_classes"))
BIT_SPEC = EncoderSpec(
    build=lambda enc, model: BiT(**parse_variant("bit", enc.variant),
                                 num_classes=enc.num_classes, dtype=jnp.dtype(model.dtype)),
    fields=("variant", "num_classes"), read=read_bit, formats="big_transfer BiT .npz")
