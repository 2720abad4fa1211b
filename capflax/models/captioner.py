"""Image encoder + caption decoder, built from the config."""

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from capflax.models.decoder import Decoder
from capflax.models.vit import ViT, parse_variant


class Captioner(nn.Module):
  encoder: nn.Module
  decoder: Decoder

  def setup(self):
    # Maps encoder width to decoder width; a LayerNorm keeps pretrained features in scale.
    self.bridge = nn.Dense(self.decoder.width, dtype=self.decoder.dtype)
    self.bridge_norm = nn.LayerNorm(dtype=self.decoder.dtype)

  def encode(self, images, train=False):
    """uint8 images [b, h, w, 3] -> image tokens [b, n, decoder width]."""
    x = images.astype(self.decoder.dtype) / 127.5 - 1.0  # [-1, 1], as ViT checkpoints expect.
    return self.bridge_norm(self.bridge(self.encoder(x, train=train)))

  def decode(self, memory, tokens, positions=None, train=False):
    return self.decoder(memory, tokens, positions, train=train)  # [b, l, vocab]

  def __call__(self, images, tokens, train=False):
    return self.decode(self.encode(images, train), tokens, train=train)


def build(config: ml_collections.ConfigDict, vocab_size: int, decode: bool = False) -> Captioner:
  """The captioner that `config.model` describes; `decode=True` gives its cached-decoding twin."""
  m = config.model
  dtype = jnp.dtype(m.dtype)
  enc = m.encoder
  if enc.name != "vit":
    raise ValueError(f"model.encoder.name: unknown encoder {enc.name!r} (available: 'vit').")
  sizes = parse_variant(enc.variant) if enc.variant else dict(
      width=enc.width, depth=enc.depth, mlp_dim=enc.mlp_dim, num_heads=enc.num_heads,
      patch_size=enc.patch_size)
  encoder = ViT(**sizes, class_token=enc.class_token, num_classes=enc.num_classes,
                dropout=enc.dropout, dtype=dtype)
  dec = m.decoder
  decoder = Decoder(vocab_size=vocab_size, max_len=config.data.max_len + 2, width=dec.width,
                    depth=dec.depth, mlp_dim=dec.mlp_dim, num_heads=dec.num_heads,
                    positions=dec.positions, tie_embeddings=dec.tie_embeddings,
                    dropout=dec.dropout, dtype=dtype, decode=decode)
  return Captioner(encoder, decoder)
