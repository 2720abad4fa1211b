"""Compute-optimal model size and data: Chinchilla's three approaches, with bootstrap intervals.

Hoffmann et al. 2022 ("Training Compute-Optimal Large Language Models") answer "for compute
C, how many parameters N and how much data D?" three ways that should agree:

  1. `fit_envelope`: the lower envelope of the training curves against compute; at each C
     the run that reached the lowest loss gives N_opt(C) and D_opt(C).
  2. `fit_isoflop`: runs of several sizes at each of a few fixed budgets (IsoFLOP
     profiles); a parabola in log N through each profile puts its minimum at N_opt(C).
  3. `fit_parametric`: L(N, D) = E + A / N^alpha + B / D^beta fitted to the final losses by
     a Huber loss on log residuals, from a grid of starting points; N_opt(C) follows in
     closed form.

Each gives power laws N_opt = G_N C^a and D_opt = G_D C^b. Here C is the XLA-counted
training compute, and D is counted in examples ((image, caption) pairs) seen. Compute per
example is not 6N for a captioner (image tokens, attention, an encoder and a decoder), so
it is modelled from the runs themselves as f(N) = k N^gamma (`CostModel`); with gamma = 1
the exponents reduce to Chinchilla's a = beta / (alpha + beta), b = alpha / (alpha + beta).

`analyse` fits all three and puts a bootstrap interval on every exponent (`bootstrap`:
resampling runs, seeds included) and says whether the three approaches agree (`verdict`).
Pure numpy and scipy on plain `Run` values, so every number can be tested on its own.
"""

import dataclasses
import itertools
from collections.abc import Callable, Sequence

import numpy as np
import scipy.optimize
import threadpoolctl

from capflax import scaling

HUBER_DELTA = 1e-3  # Hoffmann et al.'s: on log losses, close to an L1 fit, robust to outliers.
# Hoffmann et al.'s grid of starting points for (alpha, beta, e, a, b), e = log E etc.
START_GRID = {"alpha": np.arange(0.0, 2.01, 0.5), "beta": np.arange(0.0, 2.01, 0.5),
              "e": np.arange(-1.0, 1.01, 0.5), "a": np.arange(0.0, 25.1, 5.0),
              "b": np.arange(0.0, 25.1, 5.0)}
# The objective is ~1e-4 near a fit: L-BFGS-B's default stopping (a relative decrease under
# 2e-9 of max(|f|, 1)) would stop refits close to wherever they start.
OPTIMISER = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000}
# a and b of N_opt ~ C^a, D_opt ~ C^b: what all three approaches give, compared by `verdict`.
EXPONENTS = {"n_opt": "N_opt", "d_opt": "D_opt"}
# An exponent's interval wider than this (N_opt and D_opt exponents lie in 0..1 in theory)
# is too wide for overlapping intervals to count as agreement.
WIDE = 1.0


class FitError(ValueError):
  """The runs cannot support this fit (too few sizes or budgets, a profile with no minimum)."""


@dataclasses.dataclass(frozen=True)
class Run:
  """One finished training run as the fits see it.

  group: the configuration less its seed; runs sharing it are seeds of one point.
  budget: the training-FLOPs budget it was sized to (IsoFLOP runs), else None.
  curve_examples, curve_loss: the training curve, [t] each, examples seen at each
  evaluation and the val loss there (the final evaluation included).
  """
  params: float
  flops_per_example: float
  examples: float
  loss: float
  group: str
  seed: int = 0
  budget: float | None = None
  curve_examples: tuple = ()
  curve_loss: tuple = ()

  @property
  def compute(self) -> float:
    return self.flops_per_example * self.examples


def mean_over_seeds(runs: Sequence[Run]) -> Run:
  """The seeds of one configuration as one run: mean final loss, and mean curve over the
  evaluations that every seed has (they share the schedule, so the same steps)."""
  first = runs[0]
  common = set(first.curve_examples).intersection(*(r.curve_examples for r in runs[1:]))
  xs = tuple(sorted(common))
  ys = tuple(float(np.mean([dict(zip(r.curve_examples, r.curve_loss))[x] for r in runs]))
             for x in xs)
  return dataclasses.replace(first, loss=float(np.mean([r.loss for r in runs])), seed=-1,
                             curve_examples=xs, curve_loss=ys)


def by_group(runs: Sequence[Run]) -> list[list[Run]]:
  """Runs gathered by configuration, in first-seen order."""
  groups: dict[str, list[Run]] = {}
  for r in runs:
    groups.setdefault(r.group, []).append(r)
  return list(groups.values())


@dataclasses.dataclass(frozen=True)
class CostModel:
  """Training FLOPs per example as a power law of the parameters: f(N) = k * N^gamma."""
  k: float
  gamma: float

  @classmethod
  def fit(cls, runs: Sequence[Run]) -> "CostModel":
    sizes = {r.params: r.flops_per_example for r in runs}
    if len(sizes) < 2:
      raise FitError("the runs have one model size: no scaling with N to fit.")
    return cls(*scaling.fit_power_law(list(sizes), list(sizes.values())))

  def examples(self, compute, params):
    """D = C / f(N)."""
    return np.asarray(compute) / (self.k * np.asarray(params, np.float64) ** self.gamma)


@dataclasses.dataclass(frozen=True)
class PowerLaws:
  """N_opt = n_coef * C^n_opt and D_opt = d_coef * C^d_opt."""
  n_coef: float
  n_opt: float
  d_coef: float
  d_opt: float

  @classmethod
  def fit(cls, compute, n_opt, d_opt) -> "PowerLaws":
    n = scaling.fit_power_law(compute, n_opt)
    d = scaling.fit_power_law(compute, d_opt)
    return cls(n[0], n[1], d[0], d[1])

  def exponents(self) -> dict:
    return {"n_opt": self.n_opt, "d_opt": self.d_opt}


# --- Approach 1: the lower envelope of the training curves ------------------------------


@dataclasses.dataclass(frozen=True)
class Envelope:
  """At each compute of a log grid [g], the run with the lowest (interpolated) loss."""
  compute: np.ndarray  # [g]
  params: np.ndarray  # [g] N of the winning run
  examples: np.ndarray  # [g] its examples seen at that compute
  loss: np.ndarray  # [g]
  laws: PowerLaws


def fit_envelope(runs: Sequence[Run], grid_size: int = 60) -> Envelope:
  """Approach 1. Each configuration's seed-mean curve is interpolated linearly in log
  compute between its evaluations; on a log grid of compute covered by at least two model
  sizes, the lowest curve gives N_opt and D_opt (its examples seen there). Runs without
  curves count with their final point alone."""
  curves = []
  for group in by_group(runs):
    r = mean_over_seeds(group)
    x = np.asarray(r.curve_examples or (r.examples,), np.float64)  # [t]
    y = np.asarray(r.curve_loss or (r.loss,), np.float64)  # [t]
    order = np.argsort(x)
    curves.append((r, np.log(x[order] * r.flops_per_example), y[order]))
  if len({r.params for r, _, _ in curves}) < 2:
    raise FitError("the envelope needs runs of two or more model sizes.")
  lo, hi = min(c[1][0] for c in curves), max(c[1][-1] for c in curves)
  grid = np.linspace(lo, hi, grid_size)  # [g] log compute
  # [runs, g]: each curve where it was measured, +inf elsewhere.
  loss = np.stack([np.where((grid >= lc[0]) & (grid <= lc[-1]), np.interp(grid, lc, y), np.inf)
                   for _, lc, y in curves])
  sizes = np.array([r.params for r, _, _ in curves])  # [runs]
  covered = np.array([len(set(sizes[np.isfinite(loss[:, g])])) >= 2 for g in range(grid_size)])
  if covered.sum() < 2:
    raise FitError("the training curves of different sizes do not overlap in compute.")
  grid, loss = grid[covered], loss[:, covered]
  winner = np.argmin(loss, axis=0)  # [g]
  compute = np.exp(grid)
  params = sizes[winner]
  per_example = np.array([r.flops_per_example for r, _, _ in curves])[winner]
  examples = compute / per_example
  return Envelope(compute, params, examples, loss[winner, np.arange(len(winner))],
                  PowerLaws.fit(compute, params, examples))


# --- Approach 2: IsoFLOP profiles ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Profile:
  """One budget's runs [m] (seed means) and the parabola loss = c0 + c1 x + c2 x^2, x = ln N."""
  budget: float
  params: np.ndarray  # [m]
  loss: np.ndarray  # [m]
  coeffs: tuple  # (c0, c1, c2)
  n_opt: float
  loss_opt: float

  @property
  def bracketed(self) -> bool:
    """Whether the minimum lies within the sizes run (else it is an extrapolation)."""
    return bool(self.params.min() <= self.n_opt <= self.params.max())


@dataclasses.dataclass(frozen=True)
class IsoFlop:
  profiles: list  # The budgets whose profile has a minimum.
  d_opt: np.ndarray  # [budgets] D_opt = budget / f(N_opt)
  cost: CostModel
  laws: PowerLaws
  left_out: tuple = ()  # Why each budget without a minimum is not in the power laws.


def fit_profile(budget: float, params, loss) -> Profile:
  x, y = np.log(np.asarray(params, np.float64)), np.asarray(loss, np.float64)
  if len(set(x)) < 3:
    raise FitError(f"budget {budget:.3g} FLOPs: a parabola needs three or more model sizes, "
                   f"got {len(set(x))}.")
  c2, c1, c0 = np.polyfit(x, y, 2)
  if c2 <= 0:
    raise FitError(f"budget {budget:.3g} FLOPs: the loss is not convex in log N (no minimum); "
                   f"the sizes may not bracket the optimum.")
  x_opt = -c1 / (2 * c2)
  return Profile(budget, np.exp(x), y, (c0, c1, c2), float(np.exp(x_opt)),
                 float(c0 + c1 * x_opt + c2 * x_opt ** 2))


def fit_isoflop(runs: Sequence[Run]) -> IsoFlop:
  """Approach 2, on the runs that have a budget: a parabola in ln N per budget.

  A budget whose profile has no minimum (the sizes do not reach past the optimum) is left
  out of the power laws and named in `left_out`; two budgets with a minimum are needed."""
  budgeted = [r for r in runs if r.budget]
  budgets = sorted({r.budget for r in budgeted})
  if len(budgets) < 2:
    raise FitError(f"IsoFLOP profiles need runs at two or more budgets, got {len(budgets)}.")
  means = [mean_over_seeds(g) for g in by_group(budgeted)]
  profiles, left_out = [], []
  for c in budgets:
    try:
      profiles.append(fit_profile(c, [r.params for r in means if r.budget == c],
                                  [r.loss for r in means if r.budget == c]))
    except FitError as e:
      left_out.append(str(e))
  if len(profiles) < 2:
    raise FitError(f"IsoFLOP profiles need two or more budgets with a minimum, got "
                   f"{len(profiles)}: " + "; ".join(m.rstrip(".") for m in left_out) + ".")
  budgets = [p.budget for p in profiles]
  cost = CostModel.fit(means)
  n_opt = np.array([p.n_opt for p in profiles])
  d_opt = cost.examples(budgets, n_opt)
  return IsoFlop(profiles, d_opt, cost, PowerLaws.fit(budgets, n_opt, d_opt), tuple(left_out))


# --- Approach 3: the parametric loss ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Parametric:
  """L(N, D) = E + A / N^alpha + B / D^beta, and the compute-optimal frontier it implies."""
  E: float
  A: float
  B: float
  alpha: float
  beta: float
  objective: float  # The Huber loss at the fit.
  cost: CostModel
  laws: PowerLaws
  # (alpha, beta, ln E, ln A, ln B) as optimised: the start of bootstrap refits. Kept, not
  # recomputed from E: a fit that drives ln E to -40 has E == 0.0 in float, and log(E) = -inf
  # would start every refit at a NaN objective, where L-BFGS-B stops at once.
  theta: tuple

  def loss(self, params, examples):
    return self.E + self.A / np.asarray(params) ** self.alpha + self.B / np.asarray(
        examples) ** self.beta

  def exponents(self) -> dict:
    return {"alpha": self.alpha, "beta": self.beta, "E": self.E} | self.laws.exponents()


def _huber(r, delta):
  """Huber loss and its derivative, elementwise."""
  small = np.abs(r) <= delta
  return (np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)),
          np.clip(r, -delta, delta))


def _objective(theta, log_n, log_d, log_loss, delta):
  """Sum of Huber(LSE(a - alpha ln N, b - beta ln D, e) - ln L) over the runs, and its gradient.

  theta [..., 5] = (alpha, beta, e, a, b): one point, or the whole grid of starts at once.
  """
  alpha, beta, e, a, b = (x[..., None] for x in np.moveaxis(theta, -1, 0))  # each [..., 1]
  t_n, t_d = a - alpha * log_n, b - beta * log_d  # [..., n] each
  top = np.maximum(np.maximum(t_n, t_d), e)  # [..., n]
  w_n, w_d, w_e = np.exp(t_n - top), np.exp(t_d - top), np.exp(e - top)
  total = w_n + w_d + w_e
  value, slope = _huber(top + np.log(total) - log_loss, delta)  # [..., n]
  slope = slope / total  # Huber'(r) * dLSE/dterm is slope * w_term.
  g_n, g_d = slope * w_n, slope * w_d
  grad = np.stack([-(g_n * log_n).sum(-1), -(g_d * log_d).sum(-1), (slope * w_e).sum(-1),
                   g_n.sum(-1), g_d.sum(-1)], axis=-1)  # [..., 5]
  return value.sum(-1), grad


def _minimise(start, log_n, log_d, log_loss, delta):
  result = scipy.optimize.minimize(_objective, start, args=(log_n, log_d, log_loss, delta),
                                   jac=True, method="L-BFGS-B", options=OPTIMISER)
  return result.x, float(result.fun)


def fit_parametric(runs: Sequence[Run], *, delta: float = HUBER_DELTA, starts: int = 8,
                   start_from: Sequence[float] | None = None) -> Parametric:
  """Approach 3, on the final losses of the configurations (seed means).

  As Hoffmann et al.: a = ln A, b = ln B, e = ln E, minimising the Huber loss of log
  residuals with L-BFGS. Their grid of starting points is scored in one vectorised pass and
  the best `starts` of it are optimised; `start_from` (a previous fit's (alpha, beta, e, a,
  b)) replaces the grid, as bootstrap refits do.
  """
  means = [mean_over_seeds(g) for g in by_group(runs)]
  if len({r.params for r in means}) < 2 or len({r.examples for r in means}) < 2:
    raise FitError("the parametric fit needs runs at two or more model sizes and data sizes.")
  if len(means) < 5:
    raise FitError(f"the parametric fit has 5 parameters and {len(means)} configurations.")
  log_n = np.log([r.params for r in means])  # [n]
  log_d = np.log([r.examples for r in means])  # [n]
  log_loss = np.log([r.loss for r in means])  # [n]
  if start_from is not None:
    candidates = [np.asarray(start_from, np.float64)]
  else:
    grid = np.array(list(itertools.product(*START_GRID.values())))  # [points, 5]
    values, _ = _objective(grid, log_n, log_d, log_loss, delta)
    candidates = grid[np.argsort(values)[:starts]]
  theta, best = min((_minimise(s, log_n, log_d, log_loss, delta) for s in candidates),
                    key=lambda fit: fit[1])
  if not np.isfinite(best):
    raise FitError("the parametric fit did not converge (non-finite objective).")
  alpha, beta, e, a, b = theta
  cost = CostModel.fit(means)
  return Parametric(float(np.exp(e)), float(np.exp(a)), float(np.exp(b)), float(alpha),
                    float(beta), best, cost, frontier_laws(np.exp(a), np.exp(b), alpha, beta,
                                                           cost), tuple(map(float, theta)))


def frontier_laws(A, B, alpha, beta, cost: CostModel) -> PowerLaws:
  """Where L(N, C / f(N)) is lowest for each C, with f(N) = k N^gamma:

  d/dN [A N^-alpha + B (k N^gamma / C)^beta] = 0 gives
  N_opt = (alpha A / (gamma beta B k^beta))^(1 / s) C^(beta / s), s = alpha + gamma beta,
  and D_opt = C / f(N_opt) ~ C^(alpha / s).
  """
  k, gamma = cost.k, cost.gamma
  s = alpha + gamma * beta
  if s <= 0 or alpha <= 0 or beta <= 0:
    raise FitError(f"fitted alpha {alpha:.3g}, beta {beta:.3g}: no compute-optimal frontier "
                   f"(loss does not fall with both N and D).")
  n_coef = (alpha * A / (gamma * beta * B * k ** beta)) ** (1 / s)
  return PowerLaws(float(n_coef), float(beta / s), float(1 / (k * n_coef ** gamma)),
                   float(alpha / s))


# --- Intervals and the verdict ------------------------------------------------------------


def resample(runs: Sequence[Run], rng: np.random.Generator,
             stratum: Callable[[Run], object] = lambda r: None) -> list[Run]:
  """One bootstrap replicate of the runs.

  When every configuration has two or more seeds, the design is kept whole and each
  configuration's seeds are resampled: n - 1 draws with replacement out of its n seeds, so
  that the replicate's seed mean varies exactly as much as the seed mean does (a plain
  n-of-n bootstrap shrinks that variance by (n - 1) / n, a third for 3 seeds). Otherwise
  whole configurations, with all their seeds, are resampled within each `stratum` (e.g. a
  budget, so that every IsoFLOP profile keeps its size).
  """
  groups = by_group(runs)
  out = []
  if all(len(g) >= 2 for g in groups):
    for g in groups:
      out += [g[i] for i in rng.integers(len(g), size=len(g) - 1)]
    return out
  strata: dict = {}
  for g in groups:
    strata.setdefault(stratum(g[0]), []).append(g)
  for members in strata.values():
    for copy, i in enumerate(rng.integers(len(members), size=len(members))):
      # A configuration drawn twice is two configurations to the fits: rename the copy.
      out += [dataclasses.replace(r, group=f"{r.group}#{copy}") for r in members[i]]
  return out


@dataclasses.dataclass(frozen=True)
class Interval:
  estimate: float
  low: float
  high: float

  def overlaps(self, other: "Interval") -> bool:
    return self.low <= other.high and other.low <= self.high


def bootstrap(fit: Callable[[Sequence[Run]], dict], runs: Sequence[Run], *, samples: int,
              level: float, rng: np.random.Generator,
              stratum: Callable[[Run], object] = lambda r: None) -> tuple[dict, int]:
  """Percentile intervals of every number `fit` returns ({name: value}), and how many of
  the `samples` replicates could not be fitted (left out of the intervals)."""
  estimate = fit(runs)
  draws, failed = {k: [] for k in estimate}, 0
  for _ in range(samples):
    try:
      values = fit(resample(runs, rng, stratum))
    except FitError:
      failed += 1
      continue
    for k, v in values.items():
      draws[k].append(v)
  tails = 100 * (1 - level) / 2
  intervals = {}
  for k, v in estimate.items():
    low, high = np.percentile(draws[k], [tails, 100 - tails]) if draws[k] else (np.nan,) * 2
    intervals[k] = Interval(float(v), float(low), float(high))
  return intervals, failed


APPROACHES = {1: "training-curve envelope", 2: "IsoFLOP profiles", 3: "parametric L(N, D)"}


@dataclasses.dataclass(frozen=True)
class Analysis:
  level: float
  samples: int
  fits: dict  # approach -> Envelope | IsoFlop | Parametric, absent where it could not fit
  intervals: dict  # approach -> {name: Interval}
  failed: dict  # approach -> replicates that could not be fitted
  errors: dict  # approach -> why it could not be fitted at all
  verdict: str


def analyse(runs: Sequence[Run], *, samples: int = 200, level: float = 0.9,
            seed: int = 0) -> Analysis:
  """All three approaches with bootstrap intervals, and whether they agree."""
  # L-BFGS-B's BLAS calls are on 5-vectors: threads only add overhead (5x on a busy machine).
  with threadpoolctl.threadpool_limits(1, user_api="blas"):
    return _analyse(runs, samples, level, seed)


def _analyse(runs, samples, level, seed) -> Analysis:
  rng = np.random.default_rng(seed)
  fits, intervals, failed, errors = {}, {}, {}, {}
  plans = {  # approach -> fit, refit of a replicate to its numbers, bootstrap stratum
      1: (fit_envelope, lambda rs: fit_envelope(rs).laws.exponents(), lambda r: None),
      2: (fit_isoflop, lambda rs: fit_isoflop(rs).laws.exponents(), lambda r: r.budget),
      # Replicates start from the full fit: they differ from it by noise.
      3: (fit_parametric, lambda rs: fit_parametric(rs, start_from=fits[3].theta).exponents(),
          lambda r: None)}
  for approach, (fit, refit, stratum) in plans.items():
    try:
      fits[approach] = fit(runs)
    except FitError as e:
      errors[approach] = str(e)
      continue
    intervals[approach], failed[approach] = bootstrap(refit, runs, samples=samples, level=level,
                                                      rng=rng, stratum=stratum)
    if failed[approach] == samples:
      errors[approach] = (f"none of the {samples} bootstrap replicates could be fitted: too "
                          f"few runs to resample")
      del fits[approach], intervals[approach], failed[approach]
  return Analysis(level, samples, fits, intervals, failed, errors,
                  verdict(intervals, errors, level))


def verdict(intervals: dict, errors: dict, level: float) -> str:
  """One paragraph: do the N_opt and D_opt exponents' intervals of the approaches overlap?"""
  done = sorted(intervals)
  lines = []
  if len(done) < 2:
    lines.append(f"Too few approaches could be fitted to compare ({len(done)} of 3).")
  else:
    for name, what in EXPONENTS.items():
      apart = [(i, j) for i, j in itertools.combinations(done, 2)
               if not intervals[i][name].overlaps(intervals[j][name])]
      shown = ", ".join(f"{i}: {intervals[i][name].estimate:.3f} "
                        f"[{intervals[i][name].low:.3f}, {intervals[i][name].high:.3f}]"
                        for i in done)
      wide = [i for i in done if intervals[i][name].high - intervals[i][name].low > WIDE]
      if wide and not apart:
        lines.append(f"{what} exponent: no test of agreement ({shown}): the {level:.0%} "
                     f"interval of approach {' and '.join(map(str, wide))} spans more than "
                     f"{WIDE:g}, so overlapping says nothing; more sizes, budgets or seeds "
                     "narrow it.")
      elif apart:
        lines.append(f"{what} exponent: the approaches DISAGREE ({shown}); no overlap between "
                     + ", ".join(f"{i} and {j}" for i, j in apart) + ".")
      else:
        lines.append(f"{what} exponent: the approaches agree ({shown}; every pair of "
                     f"{level:.0%} intervals overlaps).")
  lines += [f"Approach {i} ({APPROACHES[i]}) not fitted: {errors[i]}" for i in sorted(errors)]
  return "\n".join(lines)
