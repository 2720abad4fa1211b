"""Flickr8k with a BiT-M ResNet-50x1 encoder (ImageNet-21k) fine-tuned at 0.1x the lr.

    python -m capflax.main --config=configs/bit_r50.py --workdir=DIR \
        --config.data.dir=/path/to/flickr8k \
        --config.model.encoder.init_from=/path/to/BiT-M-R50x1.npz

The `.npz` comes from gs://bit_models/ (google-research/big_transfer). At 224 px the
encoder gives the decoder a 7x7 grid of 2048-wide tokens.
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  c = base.get_config()
  c.model.encoder.update(name="bit", variant="R50x1", pretrained=True)
  c.optim.encoder_lr_mult = 0.1
  return c
