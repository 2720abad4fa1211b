"""A scaling sweep on the built-in diagnostic scenes; a 2-core CPU runs it in under an hour.

    python -m capflax.sweep --config=configs/scaling/cpu.py --workdir=/tmp/capflax_scaling

configs/demo.py's ViT (with a convolutional stem, at 64 px) + decoder at four widths (encoder
and decoder together, MLP 4x the width, one head per 32 channels), each for the same number
of steps on the same data, then the width-64 model on 3% and 10% of the train images. Every
point generates the data into its own workdir (4,000 images: seconds), so its record reruns
it alone; with the scene truth, the report also plots whole-object recall. Measured on a
2-core machine with another run beside it (docs/scaling.md): 49 min in all, 2.9 min (width
16) to 18 min (width 128) a point; val loss 1.84, 1.43, 1.05, 0.80 and test CIDEr-D 0.22,
0.14, 0.66, 1.29 from width 16 to 128; whole-object recall 0.000 to 0.059.
"""

import ml_collections

from configs import demo

WIDTHS = (16, 32, 64, 128)
FRACTIONS = (0.03, 0.1)  # Of the train images, at width 64 (its full-data point is above).


def get_config() -> ml_collections.ConfigDict:
  c = demo.get_config()
  # The ViT with a convolutional stem and 2-D sin-cos positions at 64 px on 4,000 scenes: what
  # configs/demo.py:scenes was when this sweep was measured (README "Results").
  c.data.update(synthetic_set="scenes", max_len=36)
  c.model.encoder.update(stem="conv", posemb="sincos2d")
  c.data.dir = ""
  c.data.train_fraction = 1.0
  c.train.update(num_steps=800, eval_every=800, checkpoint_every=400)
  return c


def size(width: int) -> dict:
  """Encoder and decoder at one width: the overrides of one model size."""
  fields = {"width": width, "mlp_dim": 4 * width, "num_heads": max(1, width // 32)}
  return {f"model.{part}.{k}": v for part in ("encoder", "decoder") for k, v in fields.items()}


def get_sweep() -> dict:
  points = {f"width={w}": size(w) for w in WIDTHS}
  points |= {f"width=64,train_fraction={f}": size(64) | {"data.train_fraction": f}
             for f in FRACTIONS}
  return {"points": points}
