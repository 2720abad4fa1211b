"""The image encoder registry: name -> `EncoderSpec` (builder, config fields, checkpoint
reader, input normalisation).

A new encoder is its module, which declares a `EncoderSpec`, plus one entry here; the
captioner, the checkpoint loader and the config checks read only this table.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from capflax.models import clip, convnet, pretrained, resnet, siglip, vit
from capflax.models.encoder_spec import EncoderSpec

REGISTRY: dict[str, EncoderSpec] = {
    "vit": vit.SPEC,  # ViT (random init, vision_transformer AugReg or big_vision .npz).
    "resnet": resnet.RESNET_SPEC,  # ResNet v1.5 with BatchNorm (random init only).
    "bit": resnet.BIT_SPEC,  # BiT ResNetV2 (big_transfer .npz).
    "siglip": siglip.SPEC,  # SigLIP / SigLIP 2 image tower (big_vision .npz or HF safetensors).
    "clip": clip.SPEC,  # OpenAI CLIP image tower (HF safetensors).
    "cnn": convnet.SPEC,  # A small BatchNorm ResNet at full resolution (random init only).
}


def spec(config: ml_collections.ConfigDict) -> EncoderSpec:
  """The registry entry of `config.model.encoder.name`."""
  name = config.model.encoder.name
  if name not in REGISTRY:
    raise ValueError(f"model.encoder.name: unknown encoder {name!r} (available: "
                     f"{', '.join(map(repr, REGISTRY))}).")
  return REGISTRY[name]


def build_encoder(config: ml_collections.ConfigDict) -> nn.Module:
  s = spec(config)
  if config.model.scan and not s.scan:
    raise ValueError(f"model.scan does not apply to the {config.model.encoder.name!r} encoder "
                     f"(it does to: {', '.join(repr(k) for k, v in REGISTRY.items() if v.scan)}).")
  return s.build(config.model.encoder, config.model)


def read_checkpoint(path: str, name: str, target) -> dict:
  """The public checkpoint at `path` for encoder `name`, shaped like `target`."""
  if name not in REGISTRY or REGISTRY[name].read is None:
    readable = ", ".join(repr(k) for k, v in REGISTRY.items() if v.read)
    raise pretrained.CheckpointError(f"model.encoder.init_from: no public checkpoint format for "
                                     f"encoder {name!r} (available: {readable}).")
  return REGISTRY[name].read(path, target)


def load_encoder(config: ml_collections.ConfigDict, params: dict) -> dict:
  """`params` with params['encoder'] read from `config.model.encoder.init_from`."""
  target = params["encoder"]
  arrays = read_checkpoint(config.model.encoder.init_from, config.model.encoder.name, target)
  loaded = jax.tree.map(lambda a, t: jax.device_put(a.astype(t.dtype), t.sharding), arrays, target)
  return {**params, "encoder": loaded}


def normalize(images, mean, std, dtype):
  """uint8 images [b, h, w, 3] -> (x / 255 - mean) / std per channel, in `dtype`.

  Written as x / (255 std) - mean / std: for [-1, 1] that is x / 127.5 - 1, exactly.
  """
  scale = jnp.asarray([255.0 * d for d in std], dtype)  # [3]
  shift = jnp.asarray([m / d for m, d in zip(mean, std)], dtype)  # [3]
  return images.astype(dtype) / scale - shift  # [b, h, w, 3]
