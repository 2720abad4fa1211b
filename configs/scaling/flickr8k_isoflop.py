"""A Flickr8k IsoFLOP sweep for a TPU pod slice: 3 compute budgets x 5 model sizes x 2 seeds.

Chinchilla's question for captioning: at a fixed training compute, which model size? Each
of the 30 points trains configs/base.py's recipe (ViT at 224 px from scratch + Transformer
decoder, batch 256) for the steps whose XLA-counted training FLOPs match its budget, with
warmup 5% of them and the cosine decay ending at the last; 20 loss-only curve points per
run feed the training-curve envelope. Flickr8k has 30,000 (image, caption) pairs, so the
larger budgets repeat them for many epochs: the fits then describe this data-limited regime,
not Chinchilla's single pass. The argument is the Flickr8k folder.

    python -m capflax.sweep --config=configs/scaling/flickr8k_isoflop.py:/path/to/flickr8k \
        --workdir=gs://BUCKET/scaling/flickr8k_isoflop --print_commands > points.txt

gives one command per point (for a scheduler, or one slice per point; every worker of a
slice runs the same line, as configs/scaling/flickr8k.py shows); then
`python -m capflax.report` on the sweep folder fits the three approaches.
"""

import ml_collections

from configs import base

# Label -> (ViT variant, decoder width, decoder depth); 64 channels per head, MLP 4x.
SIZES = {"Ti16-d256x3": ("Ti/16", 256, 3), "S16-d384x4": ("S/16", 384, 4),
         "S16-d512x6": ("S/16", 512, 6), "B16-d512x6": ("B/16", 512, 6),
         "B16-d768x8": ("B/16", 768, 8)}
BUDGETS = (3e15, 1e16, 3e16)  # Training FLOPs per run.
SEEDS = (0, 1)


def isoflop(c: ml_collections.ConfigDict, data_dir: str, budget: float,
            checkpoint_every: int) -> ml_collections.ConfigDict:
  """Steps from a FLOPs budget (the sweep's budgets replace it), warmup 5% of them, 20
  loss-only curve points; eval_every past the end: no mid-run decoding."""
  c.data.dir = data_dir
  c.train.update(num_steps=0, flops_budget=budget, curve_points=20, eval_every=10**9,
                 checkpoint_every=checkpoint_every)
  c.optim.update(warmup_fraction=0.05)
  return c


def get_config(data_dir: str = "") -> ml_collections.ConfigDict:
  return isoflop(base.get_config(), data_dir, BUDGETS[0], checkpoint_every=1000)


def size(variant: str, width: int, depth: int) -> dict:
  return {"model.encoder.variant": variant, "model.decoder.width": width,
          "model.decoder.depth": depth, "model.decoder.mlp_dim": 4 * width,
          "model.decoder.num_heads": width // 64}


def get_sweep() -> dict:
  return {"budgets": list(BUDGETS), "points": {k: size(*v) for k, v in SIZES.items()},
          "grid": {"seed": list(SEEDS)}}
