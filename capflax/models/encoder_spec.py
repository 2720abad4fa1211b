"""What capflax knows of one image encoder: one `EncoderSpec` per entry of the registry.

Kept apart from `capflax.models.encoders` (the registry) so that each encoder module can
declare its own spec without importing the registry that lists it.
"""

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import ml_collections

# [-1, 1]: what big_vision, vision_transformer and big_transfer models are trained on.
SYMMETRIC = (0.5, 0.5, 0.5)


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
  """An image encoder: its builder, the config fields it reads, its checkpoint reader
  and the input normalisation its weights expect. (Each checkpoint's resolution is in
  `capflax.models.weights`; a learned position embedding is resampled to the configured
  grid when they differ.)"""
  # (config.model.encoder, config.model) -> the module: images [b, h, w, 3] -> [b, n, c].
  build: Callable[[ml_collections.ConfigDict, ml_collections.ConfigDict], nn.Module]
  # Fields of config.model.encoder the builder reads, beyond name, init_from and frozen.
  fields: tuple[str, ...]
  # (path, target parameter shapes) -> parameters shaped like target; None: no public format.
  read: Callable[[str, Any], dict] | None = None
  formats: str = ""  # The public files `read` takes, for messages.
  # The weights' input: pixels in [0, 1], per channel (x - mean) / std (RGB).
  mean: tuple[float, float, float] = SYMMETRIC
  std: tuple[float, float, float] = SYMMETRIC
  scan: bool = False  # Whether `model.scan` (one nn.scan over the blocks) applies.
