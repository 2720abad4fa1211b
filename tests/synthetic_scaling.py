"""Sweeps drawn from a known L(N, D) = E + A / N^alpha + B / D^beta with noise, for the fits.

Training cost is K * N FLOPs per example (gamma = 1), so the true compute-optimal frontier
is N_opt ~ C^(beta / (alpha + beta)) and D_opt ~ C^(alpha / (alpha + beta)).
"""

import numpy as np

from capflax import scaling_fits

TRUE = {"E": 1.5, "A": 40.0, "B": 60.0, "alpha": 0.35, "beta": 0.3}
K = 120.0  # Training FLOPs per example per parameter.
N_OPT_EXPONENT = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])
D_OPT_EXPONENT = TRUE["alpha"] / (TRUE["alpha"] + TRUE["beta"])


def loss(params, examples):
  return TRUE["E"] + TRUE["A"] / params ** TRUE["alpha"] + TRUE["B"] / examples ** TRUE["beta"]


def true_n_opt(compute):
  """argmin_N L(N, C / (K N)), in closed form."""
  a, b, alpha, beta = TRUE["A"], TRUE["B"], TRUE["alpha"], TRUE["beta"]
  return (alpha * a / (beta * b * K ** beta)) ** (1 / (alpha + beta)) * compute ** N_OPT_EXPONENT


def sweep(rng, budgets=(1e11, 1e12, 1e13), sizes=5, seeds=3, noise=0.01, points=6, span=8.0):
  """IsoFLOP runs: at each budget `sizes` model sizes from N_opt / span to N_opt * span,
  each trained on D = C / (K N) examples, `seeds` times. Every loss (curve points and final)
  is the law times exp(normal(0, noise)); curves have `points` evaluations, log-spaced
  from 5% of the run to its end."""
  runs = []
  for c in budgets:
    for n in np.round(true_n_opt(c) * np.geomspace(1 / span, span, sizes)):
      d = c / (K * n)
      xs = tuple(d * np.geomspace(0.05, 1.0, points))
      for seed in range(seeds):
        ys = tuple(loss(n, np.array(xs)) * np.exp(rng.normal(0.0, noise, points)))
        runs.append(scaling_fits.Run(params=float(n), flops_per_example=K * n, examples=d,
                                     loss=ys[-1], group=f"C={c:g},N={n:g}", seed=seed,
                                     budget=c, curve_examples=xs, curve_loss=ys))
  return runs
