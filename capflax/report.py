"""Tables and scaling plots of finished runs: `python -m capflax.report DIR [DIR ...]`.

Reads every run.json under the given folders (`capflax.run_record`) and writes to --out:
  runs.csv, runs.md   one row per run: cost, size, seed, metrics and the config values
                      that differ between runs;
  {loss,cider_d,object_recall}_vs_compute.png   against training FLOPs, with the
                      compute-optimal frontier and a power law fitted to it;
  {loss,cider_d,object_recall}_vs_params.png    against parameters, a power law fitted
                      per data size. object_recall (whole-object recall against the scene
                      truth, capflax/metrics/scene.py) only when every run has one;
  optimal_{envelope,isoflop,parametric}.png   Chinchilla's three approaches to the
                      compute-optimal model size and data (`capflax.compute_optimal`), each
                      exponent with a bootstrap interval, and whether the three agree.
Runs that differ only in their seed are one point: their mean, with the spread as an error bar.
Runs started from another run's weights (`config.init_from_workdir`: SCST after cross-entropy)
are another phase of that run: they are tabled (with their objective and parent) but neither
plotted nor fitted, since their FLOPs and data add to their parent's.
"""

import csv
import json
import os

import matplotlib

matplotlib.use("Agg")  # Files only: no display needed.
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from flax import traverse_util  # noqa: E402

from capflax import cli, compute_optimal, scaling  # noqa: E402
from capflax.errors import ConfigError  # noqa: E402
from capflax.run_files import RUN_RECORD  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined only when run as a command: `--split` would clash with capflax.evaluate's in a
  process that imports both (the tests)."""
  flags.DEFINE_string("out", None, "Folder for runs.csv, runs.md and the plots "
                      "(default: DIR/report of the first DIR).")
  flags.DEFINE_string("split", None, "Split whose metrics are plotted, e.g. 'val' or 'test' "
                      "(default: 'val', or 'test' when a run has no val metrics).")
  flags.DEFINE_integer("bootstrap", 200, "Bootstrap replicates behind each interval of the "
                       "compute-optimal fits.")
  flags.DEFINE_float("level", 0.9, "Coverage of the bootstrap intervals, in (0, 1).")


NUMBERS = ("seed", "params.encoder", "params.decoder", "params.total", "flops.per_example",
           "flops.total", "seen.steps", "seen.examples", "seen.tokens", "wall_time_s")
# Plotted metrics: dotted key in run.json's metrics[split], axis label, lower is better.
PLOTTED = {"loss": ("loss", "teacher-forced loss (nats/token)", True),
           "cider_d": ("cider_d", "CIDEr-D", False),
           "object_recall": ("scene.object_recall", "whole-object recall (scene truth)", False)}
OPTIONAL = ("object_recall",)  # Plotted when every run has it (data with a scenes.json).
TABLED = ("loss", "cider_d", "bleu4")


class ReportError(ConfigError):
  """Bad or missing input: the message names the file and key."""


def find_runs(dirs: list[str]) -> list[str]:
  """Every run.json under `dirs`, in a stable order."""
  paths = []
  for top in dirs:
    for root, subdirs, files in os.walk(top):
      subdirs.sort()
      if RUN_RECORD in files:
        paths.append(os.path.normpath(os.path.join(root, RUN_RECORD)))
  if not paths:
    missing = [d for d in dirs if not os.path.isdir(d)]
    raise ReportError(f"no {RUN_RECORD} found under {', '.join(dirs)}"
                      + (f" (no such folder: {', '.join(missing)})." if missing else "."))
  return paths


def lookup(record: dict, key: str, path: str, number: bool = False):
  """record["a"]["b"] for key 'a.b'; a missing key is the file's fault, said so."""
  value = record
  for part in key.split("."):
    if not isinstance(value, dict) or part not in value:
      raise ReportError(f"{path}: missing key '{key}'.")
    value = value[part]
  if number and (isinstance(value, bool) or not isinstance(value, (int, float))):
    raise ReportError(f"{path}: key '{key}' is {value!r}, not a number.")
  return value


def load_run(path: str) -> dict:
  try:
    with open(path) as f:
      record = json.load(f)
  except ValueError as e:  # Malformed JSON, or not text at all.
    raise ReportError(f"{path}: not valid JSON ({e}).") from None
  for key in ("config", "metrics"):
    if not isinstance(lookup(record, key, path), dict):
      raise ReportError(f"{path}: key '{key}' is not a mapping.")
  for key in NUMBERS:
    lookup(record, key, path, number=True)
  curve = record.get("curve", [])  # Records written before training curves have none.
  if not isinstance(curve, list):
    raise ReportError(f"{path}: key 'curve' is not a list.")
  for i, point in enumerate(curve):
    for key in ("step", "examples", "flops", "val.loss"):
      lookup(point, key, f"{path}: curve[{i}]", number=True)
  return record


def choose_split(runs: dict[str, dict], split: str | None) -> str:
  """`split`, or 'val' when every run has it and 'test' otherwise; every run must have it."""
  if split is None:
    split = "val" if all("val" in r["metrics"] for r in runs.values()) else "test"
  for path, record in runs.items():
    for metric in TABLED:
      lookup(record, f"metrics.{split}.{metric}", path, number=True)
  return split


def plotted(runs: dict[str, dict], split: str) -> list[str]:
  """The PLOTTED metrics to draw: the required ones, and the optional ones all runs have."""
  def has(record, key):
    try:
      lookup(record, f"metrics.{split}.{key}", "", number=True)
      return True
    except ReportError:
      return False
  return [m for m, (key, _, _) in PLOTTED.items()
          if m not in OPTIONAL or all(has(r, key) for r in runs.values())]


def flatten(d: dict) -> dict:
  """{'model': {'width': 8}} -> {'model.width': 8}."""
  return traverse_util.flatten_dict(d, sep=".")


def differing_config(runs: dict[str, dict]) -> list[str]:
  """Config keys whose value is not the same in every run (the seed has its own column)."""
  flat = [flatten(r["config"]) for r in runs.values()]
  keys = sorted(set().union(*flat) - {"seed"})
  return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]


def parent(record: dict) -> str | None:
  """'DIR@STEP' of the run whose weights this one started from; None for a run from scratch
  (and for records written before run.json said)."""
  origin = record.get("init_from")
  return f"{origin['workdir']}@{origin['step']}" if origin else None


def table(runs: dict[str, dict]) -> tuple[list[str], list[dict]]:
  """Column names and one row per run, smallest first; values as in run.json (None where
  a run lacks one). With any run started from another's weights, each row also says its
  objective and that parent ('init_from')."""
  splits = [s for s in ("val", "test") if any(s in r["metrics"] for r in runs.values())]
  varying = differing_config(runs)
  phases = any(parent(r) for r in runs.values())
  columns = (["run"] + (["objective", "init_from"] if phases else [])
             + ["encoder_params", "decoder_params", "total_params", "train_flops",
                "examples", "tokens", "steps", "wall_time_s", "seed"]
             + [f"{s}_{m}" for s in splits for m in TABLED] + varying)
  rows = []
  dirs = [os.path.dirname(path) for path in runs]
  root = os.path.commonpath(dirs) if len(dirs) > 1 else os.path.dirname(dirs[0])
  for path, r in runs.items():
    row = {"run": os.path.relpath(os.path.dirname(path), root),  # Relative to the sweep.
           "encoder_params": r["params"]["encoder"], "decoder_params": r["params"]["decoder"],
           "total_params": r["params"]["total"], "train_flops": r["flops"]["total"],
           "examples": r["seen"]["examples"], "tokens": r["seen"]["tokens"],
           "steps": r["seen"]["steps"], "wall_time_s": r["wall_time_s"], "seed": r["seed"]}
    if phases:
      row |= {"objective": r.get("objective", {}).get("name", "xe"), "init_from": parent(r)}
    for s in splits:
      scores = r["metrics"].get(s)
      for m in TABLED:
        row[f"{s}_{m}"] = scores.get(m) if isinstance(scores, dict) else None
    config = flatten(r["config"])
    rows.append(row | {k: config.get(k) for k in varying})
  rows.sort(key=lambda row: (row["total_params"], row["train_flops"], row["seed"], row["run"]))
  return columns, rows


def short(value: float) -> str:
  """1234567 -> '1.23M': counts and FLOPs at a glance."""
  for scale, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
    if abs(value) >= scale:
      return f"{value / scale:.3g}{suffix}"
  return f"{value:.3g}"


def markdown_cell(column: str, value) -> str:
  if value is None:
    return ""
  if column in ("encoder_params", "decoder_params", "total_params", "train_flops", "examples",
                "tokens"):
    return short(value)
  if isinstance(value, float):
    return f"{value:.1f}" if column == "wall_time_s" else f"{value:.4g}"
  text = value if isinstance(value, str) else json.dumps(value)
  return text.replace("|", "\\|")


def points(runs: dict[str, dict], split: str, metrics: list[str]) -> list[dict]:
  """Runs grouped by their config less the seed: one point per group, seeds averaged."""
  groups: dict[str, list[dict]] = {}
  for r in runs.values():
    config = {k: v for k, v in flatten(r["config"]).items() if k != "seed"}
    groups.setdefault(json.dumps(config, sort_keys=True, default=str), []).append(r)
  out = []
  paths = {id(r): path for path, r in runs.items()}
  for members in groups.values():
    point = {"flops": np.mean([m["flops"]["total"] for m in members]),
             "params": members[0]["params"]["total"],
             "examples": members[0]["seen"]["examples"], "seeds": len(members),
             "train_fraction": flatten(members[0]["config"]).get("data.train_fraction", 1.0)}
    for metric in metrics:
      key = f"metrics.{split}.{PLOTTED[metric][0]}"
      values = np.array([lookup(m, key, paths[id(m)], number=True) for m in members],
                        np.float64)  # [seeds]
      point[metric] = values.mean()
      point[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else 0.0
      point[f"{metric}_runs"] = values
    out.append(point)
  return sorted(out, key=lambda p: (p["params"], p["flops"]))


def fit_label(a: float, b: float, variable: str) -> str:
  return f"y = {a:.3g} · {variable}^{b:.3f}"


def draw_points(ax, pts: list[dict], metric: str, color) -> None:
  """Seed means with their standard deviation as error bars; each seed as a faint cross."""
  x = [p["x"] for p in pts]
  y = [p[metric] for p in pts]
  err = [p[f"{metric}_std"] for p in pts]
  ax.errorbar(x, y, yerr=err, fmt="o-", color=color, capsize=3, lw=1, ms=5)
  for p in pts:
    if p["seeds"] > 1:
      ax.plot([p["x"]] * p["seeds"], p[f"{metric}_runs"], "x", color=color, ms=4, alpha=0.5)


class PlainLogFormatter(ticker.LogFormatter):
  """The ticks matplotlib would label on a log axis, as plain numbers: 0.3, not 3e-01."""

  def __call__(self, x, pos=None):
    return f"{x:g}" if super().__call__(x, pos) else ""


def finish(ax, title: str, xlabel: str, ylabel: str, path: str, any_seeds: bool) -> None:
  ax.set(xscale="log", yscale="log", title=title, xlabel=xlabel, ylabel=ylabel)
  # Metrics often span less than a decade: label the ticks between powers of ten too.
  ax.yaxis.set_major_formatter(PlainLogFormatter())
  ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
  ax.grid(True, which="both", alpha=0.3)
  if any_seeds:
    ax.plot([], [], "x", color="gray", label="individual seeds (point: mean ± std)")
  ax.legend(fontsize="small")
  ax.figure.savefig(path, dpi=120, bbox_inches="tight")
  plt.close(ax.figure)


def plot_vs_compute(pts: list[dict], metric: str, split: str, path: str) -> str:
  """Metric against training FLOPs, one line per model size; the frontier and its fit."""
  _, label, lower = PLOTTED[metric]
  _, ax = plt.subplots(figsize=(7.5, 5))
  sizes = sorted({p["params"] for p in pts})
  colors = plt.cm.viridis(np.linspace(0.0, 0.9, len(sizes)))
  for size, color in zip(sizes, colors):
    series = sorted((p | {"x": p["flops"]} for p in pts if p["params"] == size),
                    key=lambda p: p["x"])
    draw_points(ax, series, metric, color)
    ax.plot([], [], "o-", color=color, label=f"{short(size)} parameters")
  shown = [p for p in pts if p[metric] > 0]  # Log axes cannot show 0.
  on = scaling.frontier([p["flops"] for p in shown], [p[metric] for p in shown], lower)
  best = sorted((p for p, keep in zip(shown, on) if keep), key=lambda p: p["flops"])
  x = np.array([p["flops"] for p in best])
  ax.plot(x, [p[metric] for p in best], "s", mfc="none", mec="black", ms=11, mew=1.5,
          label="compute-optimal frontier")
  summary = f"{split} {metric} vs training compute: "
  if len(set(x)) >= 2:
    a, b = scaling.fit_power_law(x, [p[metric] for p in best])
    grid = np.geomspace(x.min(), x.max(), 50)
    ax.plot(grid, a * grid**b, "k--", lw=1.2,
            label=f"power law fit to the frontier: {fit_label(a, b, 'C')}")
    summary += f"exponent {b:.4f} ({fit_label(a, b, 'C')}, fit to {len(best)} frontier points)"
  else:
    summary += "no fit (the frontier has fewer than two compute values)"
  finish(ax, f"{split} {label} vs training compute", "training compute (FLOPs)",
         f"{split} {label}", path, any(p["seeds"] > 1 for p in pts))
  return summary + hidden_note(pts, metric)


def plot_vs_params(pts: list[dict], metric: str, split: str, path: str) -> str:
  """Metric against parameters, one line and one power-law fit per data size."""
  _, label, _ = PLOTTED[metric]
  _, ax = plt.subplots(figsize=(7.5, 5))
  # Data size: examples seen, and the fraction of the train images they were drawn from.
  sizes = sorted({(p["examples"], p["train_fraction"]) for p in pts})
  colors = plt.cm.plasma(np.linspace(0.0, 0.85, len(sizes)))
  fits = []
  for size, color in zip(sizes, colors):
    series = sorted((p | {"x": p["params"]} for p in pts
                     if (p["examples"], p["train_fraction"]) == size), key=lambda p: p["x"])
    draw_points(ax, series, metric, color)
    examples, fraction = size
    data = f"{short(examples)} examples" + (f" of {fraction:.0%} of the train images"
                                            if fraction != 1.0 else "")
    name = f"{data} seen"
    fitted = [p for p in series if p[metric] > 0]
    if len({p["x"] for p in fitted}) >= 2:
      a, b = scaling.fit_power_law([p["x"] for p in fitted], [p[metric] for p in fitted])
      grid = np.geomspace(fitted[0]["x"], fitted[-1]["x"], 50)
      ax.plot(grid, a * grid**b, "--", color=color, lw=1.2)
      name += f"; fit {fit_label(a, b, 'N')}"
      fits.append(f"exponent {b:.4f} at {data} ({fit_label(a, b, 'N')})")
    ax.plot([], [], "o-", color=color, label=name)
  ax.plot([], [], "k--", label="power law fit per data size (dashed)")
  finish(ax, f"{split} {label} vs model size", "parameters", f"{split} {label}", path,
         any(p["seeds"] > 1 for p in pts))
  summary = f"{split} {metric} vs parameters: "
  summary += "; ".join(fits) if fits else "no fit (no data size has two model sizes)"
  return summary + hidden_note(pts, metric)


def hidden_note(pts: list[dict], metric: str) -> str:
  """Says how many points a log axis had to leave out."""
  n = sum(p[metric] <= 0 for p in pts)
  return f" [{n} point(s) with {metric} <= 0 not shown on log axes]" if n else ""


def write_tables(columns: list[str], rows: list[dict], out: str, notes: list[str],
                 plots: list[str], optimal: list[str], optimal_plots: list[str]) -> None:
  with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)
  lines = ["# Runs", "", "| " + " | ".join(columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
  lines += ["| " + " | ".join(markdown_cell(c, row[c]) for c in columns) + " |" for row in rows]
  lines += ["", "## Power-law fits", ""] + [f"- {n}" for n in notes] + [""]
  lines += [f"![{p}]({p})" for p in plots]
  lines += ["", "## Compute-optimal model size and data (Chinchilla's three approaches)", ""]
  lines += [f"- {n}" for n in optimal] + [""] + [f"![{p}]({p})" for p in optimal_plots]
  with open(os.path.join(out, "runs.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


def report(dirs: list[str], out: str | None = None, split: str | None = None,
           bootstrap: int = 200, level: float = 0.9) -> tuple[str, list[str], list[str]]:
  """Writes the tables and plots of the runs under `dirs` into `out` (default
  DIR/report of the first DIR); returns `out`, one line per fit then the compute-optimal
  section's lines, and the plots' file names."""
  if bootstrap < 1 or not 0 < level < 1:
    raise ReportError(f"--bootstrap must be >= 1 and --level in (0, 1), got {bootstrap} and "
                      f"{level}.")
  runs = {path: load_run(path) for path in find_runs(dirs)}
  split = choose_split(runs, split)
  out = out or os.path.join(dirs[0], "report")
  os.makedirs(out, exist_ok=True)
  scratch = {path: r for path, r in runs.items() if not parent(r)}  # The scaling runs.
  notes, plots = [], []
  if len(scratch) < len(runs):
    notes.append(f"{len(runs) - len(scratch)} run(s) started from another run's weights "
                 f"(init_from_workdir) are tabled, not plotted: their FLOPs and data add to "
                 f"their parent's.")
  if scratch:
    metrics = plotted(scratch, split)
    pts = points(scratch, split, metrics)
    for metric in metrics:
      for name, plot in (("compute", plot_vs_compute), ("params", plot_vs_params)):
        plots.append(f"{metric}_vs_{name}.png")
        notes.append(plot(pts, metric, split, os.path.join(out, plots[-1])))
  optimal, optimal_plots = compute_optimal.section(scratch, out, bootstrap, level)
  columns, rows = table(runs)
  write_tables(columns, rows, out, notes, plots, optimal, optimal_plots)
  return out, notes + optimal, plots + optimal_plots


def main(argv):
  if len(argv) < 2:
    raise app.UsageError("Name one or more folders holding runs: "
                         "python -m capflax.report DIR [DIR ...] [--out=OUT].")
  # A ReportError: one line (cli.run).
  out, notes, plots = report(argv[1:], FLAGS.out, FLAGS.split, FLAGS.bootstrap, FLAGS.level)
  print("\n".join(notes))
  print(f"Wrote runs.csv, runs.md and {len(plots)} plots to {out}")


if __name__ == "__main__":
  define_flags()
  cli.run(main, "capflax.report")
