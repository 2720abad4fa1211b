"""An IsoFLOP sweep on the built-in synthetic data for a 2-core CPU: 3 budgets x 4 model sizes.

    python -m capflax.sweep --config=configs/scaling/cpu_isoflop.py --workdir=/tmp/capflax_isoflop
    python -m capflax.report /tmp/capflax_isoflop

configs/scaling/cpu.py's model (configs/demo.py's ViT + decoder, one width for both) at
widths 16, 32, 48 and 64 (24k to 310k parameters), each trained at 1e12, 2e12 and 4e12
training FLOPs: the steps are set from the XLA-counted FLOPs per example (147 steps for
width 64 at 1e12 up to 5,744 for width 16 at 4e12; `--print_plan` lists them), warmup is 5%
of them and the cosine decay ends at the last; 10 loss-only curve points per run.
configs/scaling/cpu.py's fixed-step runs put widths 32 and 64 on the compute frontier at
1.6e12 and 5.4e12 FLOPs, so these sizes should bracket the optimum (not yet verified: a
profile without a minimum is reported as such, and then wants other sizes).

Time, estimated from per-step timings of these models' training step at batch 64, measured
on this machine while other jobs kept it at a load average of about 20 on its 2 cores:
0.22, 0.41, 0.47 and 0.93 s per step for widths 16, 32, 48 and 64. The 12 points take
16,203 steps (10,052 of them width 16): 89 minutes of steps at that load. On a quieter
machine configs/scaling/cpu.py's timings (2.2 min for 800 steps of width 16, 8 min for
width 128, everything included) put the steps 2-3x faster, 30-45 minutes, plus about 1.5
minutes per point for data, compiling and evaluation: about an hour in all.
One seed per point; add seeds to SEEDS for seed spread (each adds the same time again).
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
