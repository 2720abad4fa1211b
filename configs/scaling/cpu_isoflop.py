"""An IsoFLOP sweep on the built-in synthetic data for a 2-core CPU: 3 budgets x 4 model sizes.

    python -m capflax.sweep --config=configs/scaling/cpu_isoflop.py --workdir=/tmp/capflax_isoflop
    python -m capflax.report /tmp/capflax_isoflop

configs/scaling/cpu.py's model (configs/demo.py's ViT + decoder, one width for both) at
widths 16, 32, 48 and 64 (24k to 310k parameters), each trained at 1e12, 2e12 and 4e12
training FLOPs: the steps are set from the XLA-counted FLOPs per example (147 steps for
width 64 at 1e12 up to 5,744 for width 16 at 4e12; `--print_plan` lists them), warmup is 5%
of them and the cosine decay ends at the last; 10 loss-only curve points per run.
Measured at 83ccfaf (docs/scaling.md "Measured: the CPU IsoFLOP sweep"): 94.6 minutes
on the shared 2-core machine, niced beside other jobs; about 36 on a quiet one. The sizes do not bracket the
optimum: at 1e12 the loss rises from width 16 on, so the report leaves that profile out;
only the parametric fit's exponents are tight (N_opt ~ C^0.52 [0.28, 0.84]). Smaller
widths (8) and more seeds would make the profiles answer.
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
