"""COCO captions on Karpathy's split from a prepared TFDS `coco_captions/2014`.

    tfds build coco_captions --data_dir=/path/to/tensorflow_datasets  # once, ~40 GB download
    python -m capflax.main --config=configs/coco_tfds.py --workdir=DIR \
        --config.data.tfds_data_dir=/path/to/tensorflow_datasets \
        --config.data.dir=/path/to/coco_export  # optional; default DIR/tfds_export

The images are exported once (bytes untouched) to data.dir in Karpathy's layout, where
every run and `configs/coco.py` can reuse them; the rest is `configs/coco.py`.
"""

import ml_collections

from configs import coco


def get_config() -> ml_collections.ConfigDict:
  c = coco.get_config()
  c.data.layout = "tfds:coco_captions"
  return c
