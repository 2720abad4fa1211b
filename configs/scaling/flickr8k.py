"""A Flickr8k scaling sweep for a TPU pod slice: encoder x decoder size x train data.

27 points: ViT-Ti/16, S/16, B/16 (224 px, from scratch) x a 3-, 6- and 8-layer decoder
(256, 512, 768 wide) x 25%, 50% and all of the 6,000 train images, each for the same
10,000 steps of 256 (image, caption) pairs on configs/base.py's recipe. The argument is
the Flickr8k folder (any layout `capflax.data.check` reads).

The whole sweep, one point after the other, every worker of the slice running the same
command (here through gcloud, with the checkout, venv and data that
`scripts/cloud_tpu.sh create setup` installs on each worker):

    gcloud compute tpus tpu-vm ssh capflax --zone=$ZONE --worker=all --command='cd \
        ~/capflax/src && ~/capflax/venv/bin/python -m capflax.sweep \
        --config=configs/scaling/flickr8k.py:$HOME/capflax/data \
        --workdir=gs://BUCKET/scaling/flickr8k'

Or one job per point, for a scheduler or several slices (each line runs one point; the
same line again resumes or skips it):

    python -m capflax.sweep --config=configs/scaling/flickr8k.py:/path/to/flickr8k \
        --workdir=gs://BUCKET/scaling/flickr8k --print_commands > points.txt

Then `python -m capflax.report` on the (copied) sweep folder plots the results.
"""

import ml_collections

from configs import base

ENCODERS = ("Ti/16", "S/16", "B/16")
DECODERS = {  # Label -> (width, depth); 64 channels per head, MLP 4x the width.
    "dec=256x3": (256, 3), "dec=512x6": (512, 6), "dec=768x8": (768, 8)}
FRACTIONS = (0.25, 0.5, 1.0)


def get_config(data_dir: str = "") -> ml_collections.ConfigDict:
  c = base.get_config()
  c.data.dir = data_dir
  c.data.train_fraction = 1.0
  c.train.update(num_steps=10_000, eval_every=2000, checkpoint_every=1000)
  return c


def get_sweep() -> dict:
  points = {label: {"model.decoder.width": w, "model.decoder.depth": d,
                    "model.decoder.mlp_dim": 4 * w, "model.decoder.num_heads": w // 64}
            for label, (w, d) in DECODERS.items()}
  return {"points": points,
          "grid": {"model.encoder.variant": list(ENCODERS), "data.train_fraction": list(FRACTIONS)}}
