"""Image encoder + caption decoder, built from the config."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from capflax.models import encoders
from capflax.models.decoder import Decoder
from capflax.models.encoder_spec import SYMMETRIC


class Captioner(nn.Module):
  encoder: nn.Module
  decoder: Decoder
  freeze_encoder: bool = False  # Encoder in inference mode and outside the gradient.
  # The encoder's input normalisation (registry): (pixel / 255 - mean) / std per channel.
  pixel_mean: tuple[float, ...] = SYMMETRIC
  pixel_std: tuple[float, ...] = SYMMETRIC

  def setup(self):
    # Maps encoder width to decoder width; a LayerNorm keeps pretrained features in scale.
    self.bridge = nn.Dense(self.decoder.width, dtype=self.decoder.dtype)
    self.bridge_norm = nn.LayerNorm(dtype=self.decoder.dtype)

  def features(self, images, train=False):
    """uint8 images [b, h, w, 3] -> the encoder's tokens [b, n, c]."""
    x = encoders.normalize(images, self.pixel_mean, self.pixel_std,
                           self.decoder.dtype)  # [b, h, w, 3]
    features = self.encoder(x, train=train and not self.freeze_encoder)  # [b, n, c]
    if self.freeze_encoder:  # No gradient reaches the encoder, so XLA drops its backward pass.
      features = jax.lax.stop_gradient(features)
    return features

  def bridge_features(self, features):
    """Encoder tokens [b, n, c] -> image tokens [b, n, decoder width]."""
    return self.bridge_norm(self.bridge(features.astype(self.decoder.dtype)))

  def encode(self, images, train=False):
    """uint8 images [b, h, w, 3] -> image tokens [b, n, decoder width]."""
    return self.bridge_features(self.features(images, train))

  def decode(self, memory, tokens, positions=None, train=False):
    return self.decoder(memory, tokens, positions, train=train)  # [b, l, vocab]

  def __call__(self, images, tokens, train=False):
    return self.decode(self.encode(images, train), tokens, train=train)

  def from_features(self, features, tokens, train=False):
    """The same logits from stored encoder tokens [b, n, c] (a frozen encoder's cache)."""
    return self.decode(self.bridge_features(features), tokens, train=train)


def build(config: ml_collections.ConfigDict, vocab_size: int, decode: bool = False) -> Captioner:
  """The captioner that `config.model` describes; `decode=True` gives its cached-decoding twin."""
  m = config.model
  spec = encoders.spec(config)
  dtype = jnp.dtype(m.dtype)
  dec = m.decoder
  decoder = Decoder(vocab_size=vocab_size, max_len=config.data.max_len + 2, width=dec.width,
                    depth=dec.depth, mlp_dim=dec.mlp_dim, num_heads=dec.num_heads,
                    positions=dec.positions, tie_embeddings=dec.tie_embeddings,
                    dropout=dec.dropout, dtype=dtype, decode=decode,
                    remat=m.remat and not decode)  # Decoding has no backward pass.
  return Captioner(encoders.build_encoder(config), decoder, freeze_encoder=m.encoder.frozen,
                   pixel_mean=spec.mean, pixel_std=spec.std)
