"""COCO captions on Karpathy's split: configs/base.py's model, the data from his json.

    python -m capflax.main --config=configs/coco.py --workdir=DIR \
        --config.data.dir=/path/to/coco  # dataset_coco.json + train2014/ + val2014/

The json names each image's folder (`filepath`); 'restval' images are trained on, as in
Karpathy's code: 113,287 / 5,000 / 5,000 images (train / val / test).
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  c = base.get_config()
  c.data.layout = "karpathy"
  # ~566k training pairs / 256 = 2,213 steps per epoch: 100k steps is ~45 epochs of pairs.
  c.train.update(num_steps=100_000, eval_every=10_000, checkpoint_every=5000)
  return c
