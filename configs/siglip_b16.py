"""Flickr8k with a SigLIP or SigLIP 2 B/16 image tower (big_vision), fine-tuned at 0.1x the lr.

    scripts/fetch_weights.sh siglip2_b16_224 ~/weights
    python -m capflax.main --config=configs/siglip_b16.py --workdir=DIR \
        --config.data.dir=/path/to/flickr8k \
        --config.model.encoder.init_from=$HOME/weights/siglip2_b16_224.npz

`configs/siglip_b16.py:256` (384, 512) for the towers trained at that resolution; other
sizes with --config.model.encoder.variant=L/16 (B/32, So400m/16, g-opt/16). The decoder
reads all (res/16)^2 patch tokens; inputs are in [-1, 1] as SigLIP's. Any image size that
is a multiple of the patch works: the position embeddings are resampled to its grid.
Add --config.model.encoder.frozen=True to train the decoder alone.
"""

import ml_collections

from configs import base


def get_config(resolution: str = "224") -> ml_collections.ConfigDict:
  return siglip(base.get_config(), "B/16", resolution)


def siglip(c: ml_collections.ConfigDict, variant: str, resolution: str):
  """`c` with a SigLIP `variant` tower at `resolution` pixels."""
  if not resolution.isdigit():
    raise ValueError(f"config argument: a resolution in pixels (e.g. 224), got {resolution!r}.")
  c.data.image_size = int(resolution)
  c.model.encoder.update(name="siglip", variant=variant, pretrained=True)
  c.optim.encoder_lr_mult = 0.1
  return c
