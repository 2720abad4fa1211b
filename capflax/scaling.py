"""Scaling-law arithmetic for `capflax.report`: power-law fits and compute-optimal frontiers.

Pure numpy on plain sequences, so the numbers on the plots can be tested on their own.
"""

from collections.abc import Sequence

import numpy as np


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
  """(a, b) of y = a * x**b, by least squares on (log x, log y).

  Needs positive values and at least two distinct x: a line through one x has no slope.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)  # [n], [n]
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f"x and y must be equally long 1-D sequences, got {x.shape} and {y.shape}.")
  if np.any(x <= 0) or np.any(y <= 0):
    raise ValueError("a power law is fitted to positive values only.")
  if len(np.unique(x)) < 2:
    raise ValueError("a power law needs points at two or more distinct x.")
  log_x, log_y = np.log(x), np.log(y)
  design = np.stack([np.ones_like(log_x), log_x - log_x.mean()], axis=1)  # [n, 2], centred
  (intercept, b), *_ = np.linalg.lstsq(design, log_y, rcond=None)
  return float(np.exp(intercept - b * log_x.mean())), float(b)


def frontier(x: Sequence[float], y: Sequence[float], lower_is_better: bool = True) -> np.ndarray:
  """Mask [n] of the points that no point with less or equal x beats (strictly better y).

  With x the training compute this is the compute-optimal frontier: the best result
  bought so far at each budget. Points tied with the best are all kept.
  """
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)  # [n], [n]
  cost = y if lower_is_better else -y  # [n], lower is better
  order = np.argsort(x, kind="stable")
  best_so_far = np.minimum.accumulate(cost[order])  # [n], best over the first k by x
  # Every point with the same x counts as "so far": read the best at the last of them.
  last_of_equal_x = np.searchsorted(x[order], x, side="right") - 1  # [n]
  return cost <= best_so_far[last_of_equal_x]
