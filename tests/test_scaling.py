"""Power-law fits and compute-optimal frontiers against known answers and brute force."""

import numpy as np
import pytest

from capflax import scaling


@pytest.mark.parametrize("a,b", [(3.0, -0.25), (1e-3, 0.7), (42.0, -0.05)])
def test_fit_recovers_an_exact_power_law(a, b):
  x = np.logspace(12, 18, 7)  # FLOPs-sized values: the fit must not lose precision to them.
  fit_a, fit_b = scaling.fit_power_law(x, a * x**b)
  assert fit_b == pytest.approx(b, abs=1e-9)
  assert fit_a == pytest.approx(a, rel=1e-9)


def test_fit_with_noise_is_the_log_log_least_squares_line():
  """Multiplicative noise: the exponent comes out close to the truth, and exactly equal
  to the slope of the ordinary least-squares line through (log x, log y)."""
  rng = np.random.default_rng(0)
  x = np.logspace(6, 9, 200)
  y = 5.0 * x**-0.3 * np.exp(rng.normal(0.0, 0.05, x.shape))
  a, b = scaling.fit_power_law(x, y)
  assert b == pytest.approx(-0.3, abs=0.01)
  lx, ly = np.log(x), np.log(y)
  slope = np.sum((lx - lx.mean()) * (ly - ly.mean())) / np.sum((lx - lx.mean())**2)
  assert b == pytest.approx(slope, abs=1e-12)
  assert np.log(a) == pytest.approx(ly.mean() - slope * lx.mean(), abs=1e-9)


@pytest.mark.parametrize("x,y,message", [
    ([1.0, 1.0], [2.0, 3.0], "two or more distinct x"),
    ([1.0, 2.0], [0.0, 3.0], "positive"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], "equally long"),
])
def test_fit_refuses_what_has_no_power_law(x, y, message):
  with pytest.raises(ValueError, match=message):
    scaling.fit_power_law(x, y)


def brute_force_frontier(x, y, lower_is_better):
  beats = (lambda a, b: a < b) if lower_is_better else (lambda a, b: a > b)
  return np.array([not any(x[j] <= x[i] and beats(y[j], y[i]) for j in range(len(x)))
                   for i in range(len(x))])


@pytest.mark.parametrize("lower_is_better", [True, False])
@pytest.mark.parametrize("seed", range(20))
def test_frontier_matches_brute_force(seed, lower_is_better):
  rng = np.random.default_rng(seed)
  n = rng.integers(1, 30)
  x = rng.integers(1, 8, n).astype(float)  # Few values: ties in x and in y are common.
  y = rng.integers(1, 6, n).astype(float)
  np.testing.assert_array_equal(scaling.frontier(x, y, lower_is_better),
                                brute_force_frontier(x, y, lower_is_better))


def test_frontier_by_hand():
  x = [1e15, 2e15, 4e15, 4e15, 8e15]
  loss = [3.0, 3.2, 2.5, 2.6, 2.5]  # 2e15 is worse than 1e15; 4e15's 2.6 loses to its twin.
  assert scaling.frontier(x, loss).tolist() == [True, False, True, False, True]
  assert scaling.frontier(x, [-v for v in loss], lower_is_better=False).tolist() == [
      True, False, True, False, True]
