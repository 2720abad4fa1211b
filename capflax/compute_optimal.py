"""`capflax.report`'s compute-optimal section: Chinchilla's three approaches on run.json records.

Turns records into `scaling_fits.Run`s (the val teacher-forced loss, final and along the
training curve), fits the three approaches with bootstrap intervals, and draws one figure
per approach. All three use the val loss, whatever split the rest of the report shows, so
that their answers can be compared.
"""

import json

import matplotlib.pyplot as plt
import numpy as np
from flax import traverse_util

from capflax import scaling_fits

SPLIT = "val"
PLOTS = {1: "optimal_envelope.png", 2: "optimal_isoflop.png", 3: "optimal_parametric.png"}


def runs_of(records: dict[str, dict]) -> list[scaling_fits.Run]:
  """One Run per record (path -> run.json) with val metrics; seeds of a config share a group."""
  runs = []
  for record in records.values():
    if SPLIT not in record["metrics"]:
      continue
    config = traverse_util.flatten_dict(record["config"], sep=".")
    group = json.dumps({k: v for k, v in config.items() if k != "seed"}, sort_keys=True,
                       default=str)
    curve = [p for p in record.get("curve", []) if "loss" in p["val"]]
    runs.append(scaling_fits.Run(
        params=float(record["params"]["total"]),
        flops_per_example=float(record["flops"]["per_example"]),
        examples=float(record["seen"]["examples"]), loss=float(record["metrics"][SPLIT]["loss"]),
        group=group, seed=int(record["seed"]), budget=config.get("train.flops_budget") or None,
        curve_examples=tuple(float(p["examples"]) for p in curve),
        curve_loss=tuple(float(p["val"]["loss"]) for p in curve)))
  return runs


def with_interval(intervals: dict, name: str) -> str:
  i = intervals[name]
  return f"{i.estimate:.3f} [{i.low:.3f}, {i.high:.3f}]"


def law_label(what: str, coef: float, intervals: dict, name: str) -> str:
  return f"{what} = {coef:.3g} · C^{with_interval(intervals, name)}"


def seed_spread(runs: list[scaling_fits.Run]) -> str:
  groups = [g for g in scaling_fits.by_group(runs) if len(g) > 1]
  if not groups:
    return "Seeds: one per configuration (no seed spread; intervals resample configurations)."
  stds = [np.std([r.loss for r in g], ddof=1) for g in groups]
  return (f"Seeds: {len(groups)} configuration(s) with {min(map(len, groups))}-"
          f"{max(map(len, groups))} seeds; {SPLIT} loss std over seeds median {np.median(stds):.4f}"
          f", max {max(stds):.4f} (error bars; the intervals resample seeds).")


def notes(analysis: scaling_fits.Analysis, runs: list[scaling_fits.Run]) -> list[str]:
  """One line per approach, the seed spread, and the verdict."""
  head = (f"{analysis.level:.0%} bootstrap intervals over {analysis.samples} replicates; "
          f"{SPLIT} teacher-forced loss; C = training FLOPs, D = examples seen")
  lines = [head]
  for approach, name in scaling_fits.APPROACHES.items():
    if approach not in analysis.fits:
      continue
    ivs, fit = analysis.intervals[approach], analysis.fits[approach]
    text = (f"Approach {approach} ({name}): N_opt ~ C^{with_interval(ivs, 'n_opt')}, "
            f"D_opt ~ C^{with_interval(ivs, 'd_opt')}")
    if approach == 2:
      text += "; N_opt per budget: " + ", ".join(
          f"{p.budget:.3g} FLOPs -> {p.n_opt:.3g}"
          + ("" if p.bracketed else " (outside the sizes run: extrapolated)")
          for p in fit.profiles)
      text += "".join(f"; left out: {why}" for why in fit.left_out)
    if approach == 3:
      text += (f"; L(N, D) = {fit.E:.3g} + {fit.A:.3g} / N^{fit.alpha:.3f} + {fit.B:.3g} / "
               f"D^{fit.beta:.3f}; alpha {with_interval(ivs, 'alpha')}, beta "
               f"{with_interval(ivs, 'beta')}, E {with_interval(ivs, 'E')}")
      if fit.E < 1e-6 * min(r.loss for r in runs):
        text += (" (E at its bound, 0: the runs do not approach an irreducible loss, so E is "
                 "not identified)")
    if analysis.failed[approach]:
      text += f" ({analysis.failed[approach]} replicate(s) could not be fitted, left out)"
    lines.append(text)
  return lines + [seed_spread(runs)] + analysis.verdict.splitlines()


def _frontier_panel(ax, compute, n_opt, d_opt, laws, intervals, title):
  """N_opt and D_opt against compute (measured points, when given) with their fitted power
  laws, on log axes."""
  grid = np.geomspace(min(compute), max(compute), 50)
  if n_opt is not None:
    ax.plot(compute, n_opt, "o", color="tab:blue", ms=4)
    ax.plot(compute, d_opt, "s", color="tab:orange", ms=4)
  ax.plot(grid, laws.n_coef * grid ** laws.n_opt, "-", color="tab:blue",
          label=law_label("N_opt (parameters)", laws.n_coef, intervals, "n_opt"))
  ax.plot(grid, laws.d_coef * grid ** laws.d_opt, "-", color="tab:orange",
          label=law_label("D_opt (examples)", laws.d_coef, intervals, "d_opt"))
  ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOPs)",
         ylabel="compute-optimal N (parameters) and D (examples)", title=title)
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize="small", title="fit [bootstrap interval]", title_fontsize="small")


def _save(fig, path):
  fig.tight_layout()
  fig.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(fig)


def plot_envelope(env, runs, intervals, path):
  fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
  log_sizes = np.log10([r.params for r in runs])
  shade = plt.Normalize(log_sizes.min(), log_sizes.max())
  for group in scaling_fits.by_group(runs):
    r = scaling_fits.mean_over_seeds(group)
    x = np.array(r.curve_examples or (r.examples,)) * r.flops_per_example
    left.plot(x, r.curve_loss or (r.loss,), ".-", color=plt.cm.viridis(shade(
        np.log10(r.params))), lw=0.8, ms=3, alpha=0.8)
  fig.colorbar(plt.cm.ScalarMappable(shade, "viridis"), ax=left,
               label="log10 parameters N of each run's curve")
  left.plot(env.compute, env.loss, "k-", lw=2.5, alpha=0.6, label="lower envelope")
  left.set(xscale="log", xlabel="training compute spent so far (FLOPs)",
           ylabel=f"{SPLIT} teacher-forced loss (nats/token)",
           title="Training curves (seed means) and their envelope")
  left.grid(True, which="both", alpha=0.3)
  left.legend(fontsize="small")
  _frontier_panel(right, env.compute, env.params, env.examples, env.laws, intervals,
                  "Approach 1: the envelope's model size and data per compute")
  _save(fig, path)


def plot_isoflop(iso, runs, intervals, path):
  fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
  colors = plt.cm.plasma(np.linspace(0.0, 0.85, len(iso.profiles)))
  for profile, color in zip(iso.profiles, colors):
    members = [r for r in runs if r.budget == profile.budget]
    for group in scaling_fits.by_group(members):
      losses = [r.loss for r in group]
      left.errorbar(group[0].params, np.mean(losses), fmt="o", color=color, capsize=3,
                    yerr=np.std(losses, ddof=1) if len(losses) > 1 else None)
      if len(losses) > 1:
        left.plot([group[0].params] * len(losses), losses, "x", color=color, ms=4, alpha=0.5)
    grid = np.geomspace(profile.params.min() / 1.5, profile.params.max() * 1.5, 100)
    c0, c1, c2 = profile.coeffs
    left.plot(grid, c0 + c1 * np.log(grid) + c2 * np.log(grid) ** 2, "-", color=color,
              label=f"C = {profile.budget:.3g} FLOPs: N_opt {profile.n_opt:.3g}")
    left.plot(profile.n_opt, profile.loss_opt, "*", color=color, ms=14, mec="black")
  fitted = {p.budget for p in iso.profiles}
  for budget in sorted({r.budget for r in runs} - fitted):  # Profiles with no minimum.
    members = [scaling_fits.mean_over_seeds(g) for g in scaling_fits.by_group(
        [r for r in runs if r.budget == budget])]
    members.sort(key=lambda r: r.params)
    left.plot([r.params for r in members], [r.loss for r in members], "o--", color="gray",
              alpha=0.6, label=f"C = {budget:.3g} FLOPs: no minimum (left out)")
  if any(len(g) > 1 for g in scaling_fits.by_group(runs)):
    left.plot([], [], "x", color="gray", label="individual seeds (point: mean ± std)")
  left.plot([], [], "*", color="gray", mec="black", ms=10, label="parabola minimum (N_opt)")
  left.set(xscale="log", xlabel="parameters N",
           ylabel=f"final {SPLIT} teacher-forced loss (nats/token)",
           title="IsoFLOP profiles: loss vs size at fixed compute, parabola in log N")
  left.grid(True, which="both", alpha=0.3)
  left.legend(fontsize="small")
  budgets = [p.budget for p in iso.profiles]
  _frontier_panel(right, budgets, [p.n_opt for p in iso.profiles], iso.d_opt, iso.laws,
                  intervals, "Approach 2: the profiles' minima per budget")
  _save(fig, path)


def plot_parametric(fit, runs, intervals, path):
  fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
  means = [scaling_fits.mean_over_seeds(g) for g in scaling_fits.by_group(runs)]
  observed = np.array([r.loss for r in means])
  predicted = fit.loss([r.params for r in means], [r.examples for r in means])
  dots = left.scatter(predicted, observed, c=np.log10([r.params for r in means]),
                      cmap="viridis", s=30)
  fig.colorbar(dots, ax=left, label="log10 parameters")
  span = [min(observed.min(), predicted.min()), max(observed.max(), predicted.max())]
  left.plot(span, span, "k--", lw=1, label="observed = fitted")
  left.set(xlabel="fitted L(N, D) (nats/token)",
           ylabel=f"observed final {SPLIT} loss (seed mean, nats/token)",
           title=(f"L(N, D) = {fit.E:.3g} + {fit.A:.3g}/N^{fit.alpha:.3f} + "
                  f"{fit.B:.3g}/D^{fit.beta:.3f}"))
  left.grid(True, alpha=0.3)
  left.legend(fontsize="small", title=(f"alpha {with_interval(intervals, 'alpha')}\n"
                                       f"beta {with_interval(intervals, 'beta')}\n"
                                       f"E {with_interval(intervals, 'E')}"),
              title_fontsize="small")
  compute = np.array([r.compute for r in means])
  grid = np.geomspace(compute.min(), compute.max(), 12)
  _frontier_panel(right, grid, None, None, fit.laws, intervals,
                  "Approach 3: the frontier of the fitted L(N, D)")
  right.plot(compute, [r.params for r in means], "+", color="gray", ms=8,
             label="runs (N at their compute)")
  right.legend(fontsize="small", title="fit [bootstrap interval]", title_fontsize="small")
  _save(fig, path)


def section(records: dict[str, dict], out: str, samples: int, level: float,
            seed: int = 0) -> tuple[list[str], list[str]]:
  """Fits, plots into `out`; returns (note lines, plot file names)."""
  runs = runs_of(records)
  if not runs:
    return [f"Compute-optimal fits: no run has {SPLIT} metrics."], []
  analysis = scaling_fits.analyse(runs, samples=samples, level=level, seed=seed)
  plots = []
  drawers = {1: lambda f, iv, p: plot_envelope(f, runs, iv, p),
             2: lambda f, iv, p: plot_isoflop(f, [r for r in runs if r.budget], iv, p),
             3: lambda f, iv, p: plot_parametric(f, runs, iv, p)}
  for approach, fit in analysis.fits.items():
    drawers[approach](fit, analysis.intervals[approach], f"{out}/{PLOTS[approach]}")
    plots.append(PLOTS[approach])
  return notes(analysis, runs), plots
