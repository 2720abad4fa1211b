"""Flickr30k on Karpathy's split: configs/base.py's model, the data from his json.

    python -m capflax.main --config=configs/flickr30k.py --workdir=DIR \
        --config.data.dir=/path/to/flickr30k  # dataset_flickr30k.json + flickr30k-images/

29,000 / 1,014 / 1,000 images (train / val / test), five captions each.
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  c = base.get_config()
  c.data.layout = "karpathy"
  # 145,000 training pairs / 256 = 566 steps per epoch: 40k steps is ~70 epochs of pairs.
  c.train.update(num_steps=40_000, eval_every=4000, checkpoint_every=2000)
  return c
