"""Image encoder + caption decoder, built from the config."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from capflax.models import resnet, vit
from capflax.models.decoder import Decoder

ENCODERS = ("vit", "resnet", "bit")


class Captioner(nn.Module):
  encoder: nn.Module
  decoder: Decoder
  freeze_encoder: bool = False  # Encoder in inference mode and outside the gradient.

  def setup(self):
    # Maps encoder width to decoder width; a LayerNorm keeps pretrained features in scale.
    self.bridge = nn.Dense(self.decoder.width, dtype=self.decoder.dtype)
    self.bridge_norm = nn.LayerNorm(dtype=self.decoder.dtype)

  def encode(self, images, train=False):
    """uint8 images [b, h, w, 3] -> image tokens [b, n, decoder width]."""
    x = images.astype(self.decoder.dtype) / 127.5 - 1.0  # [-1, 1], as ViT/BiT checkpoints expect.
    features = self.encoder(x, train=train and not self.freeze_encoder)  # [b, n, c]
    if self.freeze_encoder:  # No gradient reaches the encoder, so XLA drops its backward pass.
      features = jax.lax.stop_gradient(features)
    return self.bridge_norm(self.bridge(features))

  def decode(self, memory, tokens, positions=None, train=False):
    return self.decoder(memory, tokens, positions, train=train)  # [b, l, vocab]

  def __call__(self, images, tokens, train=False):
    return self.decode(self.encode(images, train), tokens, train=train)


def build(config: ml_collections.ConfigDict, vocab_size: int, decode: bool = False) -> Captioner:
  """The captioner that `config.model` describes; `decode=True` gives its cached-decoding twin."""
  m = config.model
  dtype = jnp.dtype(m.dtype)
  dec = m.decoder
  decoder = Decoder(vocab_size=vocab_size, max_len=config.data.max_len + 2, width=dec.width,
                    depth=dec.depth, mlp_dim=dec.mlp_dim, num_heads=dec.num_heads,
                    positions=dec.positions, tie_embeddings=dec.tie_embeddings,
                    dropout=dec.dropout, dtype=dtype, decode=decode,
                    remat=m.remat and not decode)  # Decoding has no backward pass.
  return Captioner(build_encoder(config), decoder, freeze_encoder=m.encoder.frozen)


def build_encoder(config: ml_collections.ConfigDict) -> nn.Module:
  """`config.model.encoder.name` ('vit' | 'resnet' | 'bit') at size `variant`."""
  dtype = jnp.dtype(config.model.dtype)
  enc = config.model.encoder
  if enc.name == "vit":
    sizes = vit.parse_variant(enc.variant) if enc.variant else dict(
        width=enc.width, depth=enc.depth, mlp_dim=enc.mlp_dim, num_heads=enc.num_heads,
        patch_size=enc.patch_size)
    return vit.ViT(**sizes, class_token=enc.class_token, num_classes=enc.num_classes,
                   dropout=enc.dropout, dtype=dtype, remat=config.model.remat,
                   scan=config.model.scan, stem=enc.get("stem", "patch"),
                   posemb=enc.get("posemb", "learned"))
  if config.model.scan:
    raise ValueError(f"model.scan applies to the 'vit' encoder only, not {enc.name!r}.")
  if enc.name == "resnet":
    return resnet.ResNet(**resnet.parse_variant("resnet", enc.variant),
                         num_classes=enc.num_classes, dtype=dtype)
  if enc.name == "bit":
    return resnet.BiT(**resnet.parse_variant("bit", enc.variant), num_classes=enc.num_classes,
                      dtype=dtype)
  raise ValueError(f"model.encoder.name: unknown encoder {enc.name!r} (available: "
                   f"{', '.join(map(repr, ENCODERS))}).")
