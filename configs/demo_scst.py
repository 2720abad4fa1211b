"""Self-critical CIDEr-D training (SCST) after the demo: `configs/demo.py`'s model, started
from a finished demo run's weights and trained on its data (docs/scst.md):

    python -m capflax.main --config=configs/demo.py --workdir=W1
    python -m capflax.main --config=configs/demo_scst.py --workdir=W2 --config.init_from_workdir=W1

Sized for at most 5 minutes on a 2-core CPU, compilation and the final evaluation included.
`configs/demo_scst.py:scenes` follows `configs/demo.py:scenes` in the same way.
"""

import ml_collections

from configs import demo


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: the configs/demo.py variant of the parent run ('', 'scenes' or 'tiny')."""
  c = demo.get_config(variant)
  c.data.captions_per_image = "one"  # An epoch is every image once: the samples are the captions.
  c.train.update(objective="scst", batch_size=32, num_steps=200, log_every=25, eval_every=200,
                 checkpoint_every=200)
  c.scst.update(num_samples=5, baseline="mean")
  c.optim.update(lr=1e-4, warmup_steps=20, schedule="cosine", end_lr_fraction=0.1)
  return c
