"""Self-critical CIDEr-D training (SCST) on Flickr8k, after a cross-entropy run of
configs/base.py (the default) or, with `:vit_b16`, of configs/vit_b16.py (docs/scst.md):

    python -m capflax.main --config=configs/base_scst.py --workdir=W2 \
        --config.data.dir=/path/to/flickr8k --config.init_from_workdir=W1

Settings as ruotianluo/self-critical.pytorch's Transformer SCST configs: 5 samples per
image, the mean of the other samples as the baseline, lr around 1e-5 (here constant after a
short warmup), about 20 epochs of the 6,000 train images.
"""

import ml_collections

from configs import base, vit_b16

PARENTS = {"base": base, "vit_b16": vit_b16}  # The cross-entropy config the run starts after.


def get_config(after: str = "base") -> ml_collections.ConfigDict:
  if after not in PARENTS:
    raise ValueError(f"configs/base_scst.py: unknown variant {after!r} (available: "
                     f"{', '.join(map(repr, PARENTS))}).")
  c = PARENTS[after].get_config()  # Its model, so that the parent's weights fit.
  c.data.captions_per_image = "one"  # An epoch is every image once: the samples are the captions.
  # 50 images x 5 samples per step; 120 steps per epoch of the 6,000 train images.
  c.train.update(objective="scst", batch_size=50, num_steps=2400, log_every=20, eval_every=300,
                 checkpoint_every=300)
  c.scst.update(num_samples=5, baseline="mean")
  c.optim.update(lr=1e-5, warmup_steps=50, schedule="constant")
  return c
