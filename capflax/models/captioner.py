"""Image encoder + caption decoder, built from the config, and the two ways callers run it:
teacher-forced over whole captions (`teacher_forced`: training losses, evaluation's loss)
and one token at a time for a search (`Decoding`: the cache a search starts from and its
tokens -> logits step), so that no caller needs the modules' methods or cache layout."""

import dataclasses

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
    """Logits [b, l, vocab] of tokens [b, l]; or [b, k, l, vocab] of k captions per image,
    tokens [b, k, l] (SCST's samples): each image's tokens are repeated, not re-encoded."""
    if tokens.ndim == 3:
      b, k, l = tokens.shape
      logits = self.decoder(jnp.repeat(memory, k, axis=0), tokens.reshape(b * k, l), positions,
                            train=train)  # [b * k, l, vocab]
      return logits.reshape(b, k, l, -1)
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


def teacher_forced(model: Captioner, variables: dict, batch: dict, *, train: bool = False,
                   rng=None):
  """(next-token logits of batch['tokens'][..., :-1], BatchNorm statistics after the pass).

  The one forward of every loss. The images are batch['image'] (uint8), or batch['features'],
  a frozen encoder's stored tokens (data.cache_features). tokens [b, l + 1] give logits
  [b, l, vocab]; [b, k, l + 1] (k captions per image) give [b, k, l, vocab]. `train`: with
  dropout (`rng`) and BatchNorm batch statistics, which are then updated; otherwise the
  statistics are returned as they came.
  """
  cached = "features" in batch
  args = (batch["features"] if cached else batch["image"], batch["tokens"][..., :-1])
  method = Captioner.from_features if cached else None
  if not train:
    return model.apply(variables, *args, method=method), variables.get("batch_stats", {})
  logits, updated = model.apply(variables, *args, train=True, rngs={"dropout": rng},
                                mutable=["batch_stats"], method=method)
  return logits, updated.get("batch_stats", {})


@dataclasses.dataclass(frozen=True)
class Decoding:
  """What a search (`capflax.decode`) needs from the captioner: image tokens, the cache a
  search starts from, and the step tokens [n] -> next-token logits [n, vocab].

  `cached=False` reruns the decoder over the whole token buffer (fixed length, causally
  masked) at every step instead of using the KV cache: the reference the cache is tested and
  timed against.
  """
  model: Captioner  # The cached-decoding twin when `cached`.
  steps: int  # The longest search, EOS included.
  cached: bool = True

  def encode(self, variables: dict, images):
    """uint8 images [b, s, s, 3] -> image tokens [b, n, d]."""
    return self.model.apply(variables, images, method=Captioner.encode)

  def first_cache(self, params, memory):
    """The state `tokens_to_logits` starts from, for a batch of image tokens [b, n, d]."""
    if not self.cached:
      return {"memory": memory, "tokens": jnp.zeros(memory.shape[:1] + (self.steps,), jnp.int32)}
    # A full-length call allocates the self-attention caches and fills the cross-attention ones.
    _, variables = self.model.apply({"params": params}, memory,
                                    jnp.zeros((memory.shape[0], self.steps + 1), jnp.int32),
                                    method=Captioner.decode, mutable=["cache"])
    return variables["cache"]

  def tokens_to_logits(self, params):
    """(tokens [n], position, cache) -> (logits [n, vocab], cache), with `params` fixed."""
    model = self.model

    def with_cache(tokens, position, cache):
      # The cross-attention reads the image's keys/values from the cache: no memory needed.
      logits, variables = model.apply(
          {"params": params, "cache": cache}, None, tokens[:, None], position[None],
          method=Captioner.decode, mutable=["cache"])
      return logits[:, 0], variables["cache"]  # [n, vocab]

    def recomputed(tokens, position, state):
      prefix = state["tokens"].at[:, position].set(tokens)  # [n, steps]
      logits = model.apply({"params": params}, state["memory"], prefix,
                           method=Captioner.decode)  # [n, steps, vocab]
      return logits[:, position], state | {"tokens": prefix}

    return with_cache if self.cached else recomputed


def decoding(config: ml_collections.ConfigDict, vocab_size: int, steps: int,
             cached: bool = True) -> Decoding:
  """The captioner of `config.model` run one token at a time, for searches of `steps` tokens."""
  return Decoding(build(config, vocab_size, decode=cached), steps, cached)
