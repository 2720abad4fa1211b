"""Flickr8k with OpenAI's CLIP ViT-B/16 image tower, fine-tuned at 0.1x the lr.

    scripts/fetch_weights.sh clip_b16 ~/weights
    python -m capflax.main --config=configs/clip_b16.py --workdir=DIR \
        --config.data.dir=/path/to/flickr8k \
        --config.model.encoder.init_from=$HOME/weights/clip-vit-base-patch16.safetensors

--config.model.encoder.variant=B/32 or L/14 (with --config.data.image_size=336 for
clip-vit-large-patch14-336). Inputs are normalised with CLIP's mean and std; the class
token runs through the tower, the decoder reads the 196 patch tokens after `ln_post`.
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  c = base.get_config()
  c.data.image_size = 224
  c.model.encoder.update(name="clip", variant="B/16", pretrained=True)
  c.optim.encoder_lr_mult = 0.1
  return c
