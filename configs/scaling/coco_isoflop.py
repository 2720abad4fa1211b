"""A COCO (Karpathy split) IsoFLOP sweep for a TPU pod slice: 4 budgets x 5 sizes x 2 seeds.

configs/scaling/flickr8k_isoflop.py's sizes and schedule on configs/coco.py's data (566k
training pairs: the budgets here stay within about 10 epochs for the smaller models). The
argument is the COCO folder (dataset_coco.json + train2014/ + val2014/).

    python -m capflax.sweep --config=configs/scaling/coco_isoflop.py:/path/to/coco \
        --workdir=gs://BUCKET/scaling/coco_isoflop --print_commands > points.txt
"""

import ml_collections

from configs import coco
from configs.scaling import flickr8k_isoflop

BUDGETS = (3e16, 1e17, 3e17, 1e18)  # Training FLOPs per run.


def get_config(data_dir: str = "") -> ml_collections.ConfigDict:
  return flickr8k_isoflop.isoflop(coco.get_config(), data_dir, BUDGETS[0],
                                  checkpoint_every=2000)


def get_sweep() -> dict:
  return flickr8k_isoflop.get_sweep() | {"budgets": list(BUDGETS)}
