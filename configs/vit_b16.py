"""Flickr8k with an ImageNet-21k ViT-B/16 encoder (AugReg) fine-tuned at 0.1x the lr.

    python -m capflax.main --config=configs/vit_b16.py --workdir=DIR \
        --config.data.dir=/path/to/flickr8k --config.model.encoder.init_from=/path/to/B_16.npz

B_16.npz is e.g. B_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.0-sd_0.0.npz from
gs://vit_models/augreg/ (google-research/vision_transformer);
big_vision's ViT-B/16 `.npz` files load too. Add --config.model.encoder.frozen=True to
train the decoder alone.
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  c = base.get_config()
  # The class token is kept (the checkpoint was trained with it); the decoder sees patches only.
  c.model.encoder.update(name="vit", variant="B/16", class_token=True, pretrained=True)
  c.optim.encoder_lr_mult = 0.1
  return c
