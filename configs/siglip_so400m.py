"""Flickr8k with a SigLIP or SigLIP 2 So400m/14 image tower, fine-tuned at 0.1x the lr.

    scripts/fetch_weights.sh siglip2_so400m14_224 ~/weights
    python -m capflax.main --config=configs/siglip_so400m.py --workdir=DIR \
        --config.data.dir=/path/to/flickr8k \
        --config.model.encoder.init_from=$HOME/weights/siglip2_so400m14_224.npz

`configs/siglip_so400m.py:384` for the 384 px towers (27x27 = 729 tokens of width 1152);
--config.model.encoder.variant=So400m/16 for SigLIP 2's patch-16 towers (256/384/512 px).
At 400M parameters the encoder is scanned (one compiled block) and rematerialised.
"""

import ml_collections

from configs import base
from configs.siglip_b16 import siglip


def get_config(resolution: str = "224") -> ml_collections.ConfigDict:
  c = siglip(base.get_config(), "So400m/14", resolution)
  c.model.update(scan=True, remat=True)
  return c
