"""An IsoFLOP sweep on the built-in synthetic data for this 2-core CPU: budgets x sizes x seeds.

    python -m capflax.sweep --config=configs/scaling/cpu_isoflop.py --workdir=/tmp/capflax_isoflop
    python -m capflax.report /tmp/capflax_isoflop

ESTIMATE
"""

import ml_collections

from configs.scaling import cpu

WIDTHS = (16, 32, 64, 128)
SIZES = {f"width={w}": cpu.size(w) for w in WIDTHS}
BUDGETS = (1e12, 3e12, 1e13)  # Training FLOPs per run.
SEEDS = (0,)


def get_config() -> ml_collections.ConfigDict:
  c = cpu.get_config()
  c.train.update(num_steps=0, flops_budget=BUDGETS[0], curve_points=10, eval_every=10**9,
                 checkpoint_every=500)
  c.optim.update(warmup_fraction=0.05)
  return c


def get_sweep() -> dict:
  return {"budgets": list(BUDGETS), "points": SIZES, "grid": {"seed": list(SEEDS)}}
