"""An IsoFLOP sweep on the built-in synthetic data for a 2-core CPU: 3 budgets x 4 model sizes.

    python -m capflax.sweep --config=configs/scaling/cpu_isoflop.py --workdir=/tmp/capflax_isoflop
    python -m capflax.report /tmp/capflax_isoflop

configs/scaling/cpu.py's model (configs/demo.py's ViT + decoder, one width for both) at
widths 16, 32, 48 and 64 (24k to 310k parameters), each trained at 1e12, 2e12 and 4e12
training FLOPs: the steps are set from the XLA-counted FLOPs per example (147 steps for
width 64 at 1e12 up to 5,745 for width 16 at 4e12; `--print_plan` lists them), warmup is 5%
of them and the cosine decay ends at the last; 10 loss-only curve points per run.
The sizes bracket the compute-optimal width that configs/scaling/cpu.py's fixed-step runs
suggest (32-64 at 1-5e12 FLOPs); a profile without a minimum is reported as such.

Time, estimated from per-step timings of these models' training step at batch 64 (measured
with 4 other jobs on the 2 cores: 0.29, 0.41, ~0.7 and 1.1 s per step for widths 16 to
64; configs/scaling/cpu.py's README timings, on a quieter machine, are about 3.4x faster):
12 points, 16,229 steps in all, about 33 minutes of steps plus about 1.5 minutes per point
for data, compiling and evaluation: about 50 minutes on a quiet 2-core machine, 2.5 hours
on a busy one. One seed per point; add seeds to SEEDS for seed spread (the time doubles).
"""

import ml_collections

from configs.scaling import cpu

WIDTHS = (16, 32, 48, 64)
BUDGETS = (1e12, 2e12, 4e12)  # Training FLOPs per run.
SEEDS = (0,)


def get_config() -> ml_collections.ConfigDict:
  c = cpu.get_config()
  # eval_every past the end: no mid-run decoding, only the curve's loss points and the final
  # evaluation (val and test).
  c.train.update(num_steps=0, flops_budget=BUDGETS[0], curve_points=10, eval_every=10**9,
                 checkpoint_every=500)
  c.optim.update(warmup_fraction=0.05)
  return c


def get_sweep() -> dict:
  return {"budgets": list(BUDGETS), "points": {f"width={w}": cpu.size(w) for w in WIDTHS},
          "grid": {"seed": list(SEEDS)}}
