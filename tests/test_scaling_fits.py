"""Chinchilla's three approaches against a known L(N, D), closed forms and brute force."""

import dataclasses

import numpy as np
import pytest
import scipy.optimize
import threadpoolctl

from capflax import scaling_fits as sf
from tests import synthetic_scaling as synthetic


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
  with threadpoolctl.threadpool_limits(1, user_api="blas"):  # As `analyse` runs the fits.
    yield


def test_noise_free_runs_give_the_law_back_exactly():
  runs = synthetic.sweep(np.random.default_rng(0), noise=0.0, seeds=1)
  fit = sf.fit_parametric(runs)
  for name in ("alpha", "beta", "E", "A", "B"):
    assert getattr(fit, name) == pytest.approx(synthetic.TRUE[name], rel=1e-6), name
  assert fit.laws.n_opt == pytest.approx(synthetic.N_OPT_EXPONENT, abs=1e-6)
  assert fit.laws.d_opt == pytest.approx(synthetic.D_OPT_EXPONENT, abs=1e-6)
  # Profiles are not exactly parabolas in log N, but sizes symmetric about the optimum put
  # the vertex on it; the envelope picks among 5 discrete sizes.
  assert sf.fit_isoflop(runs).laws.n_opt == pytest.approx(synthetic.N_OPT_EXPONENT, abs=1e-3)
  assert sf.fit_envelope(runs).laws.n_opt == pytest.approx(synthetic.N_OPT_EXPONENT, abs=0.01)


@pytest.mark.parametrize("seed", [0, 1])
def test_noisy_runs_recover_the_law_within_tolerances(seed):
  """5 budgets x 7 sizes x 3 seeds at 1% noise on every loss. Stated tolerances: alpha and
  beta +-0.03, E +-0.1, the N_opt exponent +-0.02 (approaches 2 and 3) and +-0.03 (1)."""
  runs = synthetic.sweep(np.random.default_rng(seed), budgets=(1e10, 1e11, 1e12, 1e13, 1e14),
                         sizes=7, seeds=3)
  fit = sf.fit_parametric(runs)
  assert fit.alpha == pytest.approx(synthetic.TRUE["alpha"], abs=0.03)
  assert fit.beta == pytest.approx(synthetic.TRUE["beta"], abs=0.03)
  assert fit.E == pytest.approx(synthetic.TRUE["E"], abs=0.1)
  assert fit.laws.n_opt == pytest.approx(synthetic.N_OPT_EXPONENT, abs=0.02)
  assert sf.fit_isoflop(runs).laws.n_opt == pytest.approx(synthetic.N_OPT_EXPONENT, abs=0.02)
  assert sf.fit_envelope(runs).laws.n_opt == pytest.approx(synthetic.N_OPT_EXPONENT, abs=0.03)


def test_intervals_cover_the_truth_at_about_their_nominal_rate():
  """12 independent noisy sweeps (3 budgets x 5 sizes x 3 seeds), a 90% interval each for
  alpha, beta, E and approach 3's and 2's N_opt exponent: 60 intervals. An interval that
  ignored the seed spread (the bootstrap refits stopping at their start did this) covered
  about a third of the time."""
  truth = {(3, "alpha"): synthetic.TRUE["alpha"], (3, "beta"): synthetic.TRUE["beta"],
           (3, "E"): synthetic.TRUE["E"], (3, "n_opt"): synthetic.N_OPT_EXPONENT,
           (2, "n_opt"): synthetic.N_OPT_EXPONENT}
  covered, widths = [], []
  for rep in range(12):
    analysis = sf.analyse(synthetic.sweep(np.random.default_rng(100 + rep)), samples=30,
                          level=0.9, seed=rep)
    assert analysis.failed == {1: 0, 2: 0, 3: 0}
    for (approach, name), value in truth.items():
      interval = analysis.intervals[approach][name]
      covered.append(interval.low <= value <= interval.high)
      widths.append(interval.high - interval.low)
  assert 0.78 <= np.mean(covered) <= 0.98, np.mean(covered)
  assert min(widths) > 0


def test_frontier_laws_match_a_numerical_minimum():
  """N_opt(C) = argmin_N L(N, C / (k N^gamma)) with gamma != 1, found by a 1-D search."""
  A, B, alpha, beta, k, gamma = 300.0, 900.0, 0.4, 0.25, 50.0, 1.3
  laws = sf.frontier_laws(A, B, alpha, beta, sf.CostModel(k, gamma))
  for c in (1e12, 1e15, 1e18):
    def loss(log_n):
      n = np.exp(log_n)
      return A / n ** alpha + B / (c / (k * n ** gamma)) ** beta
    best = scipy.optimize.minimize_scalar(loss, bounds=(0.0, 60.0), method="bounded",
                                          options={"xatol": 1e-10}).x
    assert laws.n_coef * c ** laws.n_opt == pytest.approx(np.exp(best), rel=1e-6)
    assert laws.d_coef * c ** laws.d_opt == pytest.approx(c / (k * np.exp(best) ** gamma),
                                                          rel=1e-5)
  assert laws.n_opt == pytest.approx(beta / (alpha + gamma * beta))


def test_isoflop_vertex_of_an_exact_parabola():
  x = np.log([1e4, 3e4, 1e5, 3e5])
  loss = 2.0 + 0.5 * (x - np.log(5e4)) ** 2
  profile = sf.fit_profile(1e12, np.exp(x), loss)
  assert profile.n_opt == pytest.approx(5e4, rel=1e-9)
  assert profile.loss_opt == pytest.approx(2.0, abs=1e-9)
  with pytest.raises(sf.FitError, match=r"^budget 1e\+12 FLOPs: the loss is not convex"):
    sf.fit_profile(1e12, np.exp(x), -loss)
  with pytest.raises(sf.FitError, match="three or more model sizes, got 2"):
    sf.fit_profile(1e12, [1e4, 1e5, 1e5], [1.0, 2.0, 2.1])


def test_envelope_by_hand():
  """Small model cheaper and better early, large model better late: they cross at 1e12."""
  small = sf.Run(params=1e4, flops_per_example=1e6, examples=1e7, loss=2.0, group="s",
                 curve_examples=(1e5, 1e6, 1e7), curve_loss=(3.0, 2.0, 2.0))
  large = sf.Run(params=1e5, flops_per_example=1e7, examples=1e6, loss=1.0, group="l",
                 curve_examples=(1e4, 1e5, 1e6), curve_loss=(4.0, 2.0, 1.0))
  env = sf.fit_envelope([small, large], grid_size=41)
  # Both cover 1e11..1e13; below 1e12 small's loss (3 -> 2) beats large's (4 -> 2).
  assert env.compute[0] == pytest.approx(1e11) and env.compute[-1] == pytest.approx(1e13)
  before = env.compute < 1e12 * (1 - 1e-9)
  after = env.compute > 1e12 * (1 + 1e-9)
  assert set(env.params[before]) == {1e4} and set(env.params[after]) == {1e5}
  np.testing.assert_allclose(env.examples[before], env.compute[before] / 1e6)
  middle = np.argmin(np.abs(np.log(env.compute) - np.log(1e12)))
  assert env.loss[middle] == pytest.approx(2.0)


def test_seeds_are_resampled_n_minus_one_of_n_so_the_mean_varies_as_it_should():
  values = np.array([1.0, 1.3, 0.7, 1.6])
  runs = [sf.Run(params=1.0, flops_per_example=1.0, examples=1.0, loss=v, group="g", seed=i)
          for i, v in enumerate(values)] + [
      sf.Run(params=2.0, flops_per_example=1.0, examples=1.0, loss=5.0, group="h", seed=i)
      for i in range(2)]
  rng = np.random.default_rng(0)
  means = []
  for _ in range(4000):
    replicate = sf.resample(runs, rng)
    assert sorted({r.group for r in replicate}) == ["g", "h"]
    assert [r.group for r in replicate].count("g") == 3
    means.append(np.mean([r.loss for r in replicate if r.group == "g"]))
  # The variance of a mean of 4 seeds: s^2 / 4.
  assert np.var(means) == pytest.approx(values.var(ddof=1) / 4, rel=0.08)


def test_single_seed_configurations_are_resampled_within_their_budget():
  runs = [sf.Run(params=n, flops_per_example=1.0, examples=1.0, loss=1.0, group=f"{c},{n}",
                 budget=c) for c in (1e9, 1e10) for n in (1.0, 2.0, 3.0)]
  rng = np.random.default_rng(0)
  for _ in range(50):
    replicate = sf.resample(runs, rng, stratum=lambda r: r.budget)
    assert [r.budget for r in replicate] == [1e9] * 3 + [1e10] * 3
    assert len({r.group for r in replicate}) == 6  # Copies are distinct configurations.


def test_too_little_to_fit_is_said():
  one_size = [sf.Run(params=1e4, flops_per_example=1e6, examples=d, loss=1.0, group=str(d),
                     budget=1e6 * d) for d in (1e3, 1e4)]
  analysis = sf.analyse(one_size, samples=5)
  assert analysis.fits == {} and analysis.intervals == {}
  assert analysis.errors == {
      1: "the envelope needs runs of two or more model sizes.",
      2: "IsoFLOP profiles need two or more budgets with a minimum, got 0: budget 1e+09 FLOPs: "
         "a parabola needs three or more model sizes, got 1; budget 1e+10 FLOPs: a parabola "
         "needs three or more model sizes, got 1.",
      3: "the parametric fit needs runs at two or more model sizes and data sizes."}
  assert analysis.verdict.splitlines()[0] == (
      "Too few approaches could be fitted to compare (0 of 3).")


def test_verdict_names_the_approaches_whose_intervals_do_not_overlap():
  def both(estimate, low, high):
    interval = sf.Interval(estimate, low, high)
    return {"n_opt": interval, "d_opt": dataclasses.replace(interval)}

  intervals = {1: both(0.5, 0.40, 0.60), 2: both(0.45, 0.42, 0.48), 3: both(0.70, 0.65, 0.75)}
  assert sf.verdict(intervals, {}, 0.9).splitlines() == [
      "N_opt exponent: the approaches DISAGREE (1: 0.500 [0.400, 0.600], 2: 0.450 [0.420, "
      "0.480], 3: 0.700 [0.650, 0.750]); no overlap between 1 and 3, 2 and 3.",
      "D_opt exponent: the approaches DISAGREE (1: 0.500 [0.400, 0.600], 2: 0.450 [0.420, "
      "0.480], 3: 0.700 [0.650, 0.750]); no overlap between 1 and 3, 2 and 3."]
  del intervals[3]
  assert sf.verdict(intervals, {3: "why"}, 0.8).splitlines() == [
      "N_opt exponent: the approaches agree (1: 0.500 [0.400, 0.600], 2: 0.450 [0.420, 0.480]; "
      "every pair of 80% intervals overlaps).",
      "D_opt exponent: the approaches agree (1: 0.500 [0.400, 0.600], 2: 0.450 [0.420, 0.480]; "
      "every pair of 80% intervals overlaps).",
      "Approach 3 (parametric L(N, D)) not fitted: why"]


def test_a_fit_no_replicate_can_repeat_is_not_given_an_interval():
  """One seed of exactly three sizes per budget: a replicate redraws the three within each
  budget and keeps three distinct sizes in both budgets only 5% of the time."""
  runs = [r for r in synthetic.sweep(np.random.default_rng(0), sizes=3, seeds=1,
                                     budgets=(1e11, 1e12))]
  assert sf.fit_isoflop(runs).laws.n_opt > 0  # The sweep itself has its profiles.
  analysis = sf.analyse(runs, samples=4, seed=1)
  assert 2 not in analysis.fits and 2 not in analysis.intervals
  assert analysis.errors[2] == ("none of the 4 bootstrap replicates could be fitted: too few "
                                "runs to resample")


def test_a_fit_whose_E_underflows_still_starts_its_refits():
  """E = 0: a fit may drive ln E to -1000 (the CPU IsoFLOP sweep's did), where exp gives
  E == 0.0. Refits must start from the fit's own coordinates: a start at log(0) = -inf is a
  NaN objective, where L-BFGS-B stops at once and every replicate repeated the fit."""
  rng = np.random.default_rng(3)
  runs = [dataclasses.replace(r, loss=float((synthetic.loss(r.params, r.examples)
                                              - synthetic.TRUE["E"]) * np.exp(rng.normal(0, 0.01))))
          for r in synthetic.sweep(np.random.default_rng(3), seeds=1, sizes=5)]
  fit = sf.fit_parametric(runs, start_from=(0.3, 0.3, -1000.0, np.log(40.0), np.log(60.0)))
  assert fit.E == 0.0 and np.all(np.isfinite(fit.theta)) and fit.theta[2] < -900
  refit = sf.fit_parametric(sf.resample(runs, np.random.default_rng(1)), start_from=fit.theta)
  assert np.isfinite(refit.objective) and abs(refit.alpha - fit.alpha) > 1e-4
  assert fit.alpha == pytest.approx(synthetic.TRUE["alpha"], abs=0.05)


def test_a_budget_whose_profile_has_no_minimum_is_left_out_and_named():
  """The smallest budget's sizes all lie past its optimum (loss rising with N): its profile
  is not convex, so the power laws come from the other two budgets."""
  runs = synthetic.sweep(np.random.default_rng(0), noise=0.0, seeds=1)
  runs = [dataclasses.replace(r, loss=1.0 + np.log(r.params) ** 0.5) if r.budget == 1e11 else r
          for r in runs]
  iso = sf.fit_isoflop(runs)
  assert [p.budget for p in iso.profiles] == [1e12, 1e13]
  assert iso.left_out == ("budget 1e+11 FLOPs: the loss is not convex in log N (no minimum); "
                          "the sizes may not bracket the optimum.",)
  assert all(p.bracketed for p in iso.profiles)
  assert iso.laws.n_opt == pytest.approx(synthetic.N_OPT_EXPONENT, abs=1e-3)
  only_one = [r for r in runs if r.budget != 1e13]
  with pytest.raises(sf.FitError, match=r"^IsoFLOP profiles need two or more budgets with a "
                                        r"minimum, got 1: budget 1e\+11 FLOPs"):
    sf.fit_isoflop(only_one)


def test_a_minimum_outside_the_sizes_run_is_an_extrapolation():
  x = np.log([1e4, 3e4, 1e5])
  profile = sf.fit_profile(1e12, np.exp(x), 2.0 + 0.5 * (x - np.log(5e3)) ** 2)
  assert profile.n_opt == pytest.approx(5e3, rel=1e-9) and not profile.bracketed


def test_overlap_of_too_wide_intervals_is_not_called_agreement():
  wide = {"n_opt": sf.Interval(-0.7, -1.2, 5.5), "d_opt": sf.Interval(0.5, 0.4, 0.6)}
  narrow = {"n_opt": sf.Interval(0.5, 0.3, 0.8), "d_opt": sf.Interval(0.5, 0.45, 0.55)}
  assert sf.verdict({2: wide, 3: narrow}, {}, 0.9).splitlines() == [
      "N_opt exponent: no test of agreement (2: -0.700 [-1.200, 5.500], 3: 0.500 [0.300, "
      "0.800]): the 90% interval of approach 2 spans more than 1, so overlapping says nothing; "
      "more sizes, budgets or seeds narrow it.",
      "D_opt exponent: the approaches agree (2: 0.500 [0.400, 0.600], 3: 0.500 [0.450, 0.550]; "
      "every pair of 90% intervals overlaps)."]
