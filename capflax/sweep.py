"""Sweeps: `python -m capflax.sweep --config=configs/scaling/cpu.py --workdir=DIR`.

A sweep file is a config file with two functions:

  get_config(arg)  the base training config (so `capflax.main` can train it alone), and
  get_sweep()      {"grid": {key: [values]}, "points": [{key: value}] or {label: {key: value}},
                    "budgets": [training FLOPs]},

keys being dotted config fields ("model.decoder.width", "seed"). The sweep's points are the
explicit points (one empty point if there are none) times the product of the grid.
"budgets" makes an IsoFLOP sweep: it is the grid's first axis, over `train.flops_budget`,
so each point trains for the steps whose XLA-counted training FLOPs match its budget
(`state.durations`; warmup and decay follow the steps with `optim.warmup_fraction`). Each
trains in its own `DIR/<name>` through `train.train_and_evaluate`, so an interrupted point
resumes from its checkpoint; a point with `results.json` and `run.json` is finished and
skipped. A preempted point (SIGTERM) ends the sweep: the same command resumes it. `--print_plan`
lists every point's size, FLOPs per example and steps without training.
A name is the point's label, or its values (`width=64`), then the grid's values, each key
shortened to the shortest dotted suffix that is unique in the sweep: `width=64,seed=0`.
`DIR/sweep.json` records the base config and every point's overrides; a rerun with a
different base config is refused, so one folder never mixes two experiments.
"""

import dataclasses
import importlib.util
import itertools
import json
import os
import re
import shlex
import sys
import uuid

import jax
import ml_collections
from absl import app, flags, logging
from etils import epath
from flax.traverse_util import flatten_dict

from capflax import cli, config_check, run_files, run_record, state, train
from capflax.data import dataset
from capflax.errors import ConfigError

SWEEP_FILE = "sweep.json"
BUDGET = "train.flops_budget"  # The field an IsoFLOP sweep's budgets set.
# train_and_evaluate writes these once a run is done; a point missing either is (re)run,
# which for a trained point only evaluates it again.
FINISHED = (run_files.RESULTS, run_files.RUN_RECORD)

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """Defined when run as a program only: importing this module leaves the flags alone."""
  flags.DEFINE_string("config", None, "Sweep file (configs/scaling/*.py), optionally with an "
                      "argument for its get_config: FILE:ARG.")
  flags.DEFINE_string("workdir", None, "Directory of the sweep; each point trains in "
                      "WORKDIR/<point name>. Rerunning skips finished points, resumes the rest.")
  flags.DEFINE_string("point", None, "Run only the point of this name (see --print_commands).")
  flags.DEFINE_bool("print_commands", False, "Print one shell command per point (for a "
                    "cluster or TPU pod scheduler) instead of training.")
  flags.DEFINE_bool("print_plan", False, "Print each point's parameters, training FLOPs per "
                    "example, steps and examples instead of training (prepares each point's "
                    "data and vocabulary in its workdir, as training would).")
  cli.define_distributed_flags()
  flags.adopt_module_key_flags(cli)  # --help lists them too.
  flags.mark_flags_as_required(["config", "workdir"])


class SweepError(ConfigError):
  """A malformed sweep file or workdir; the message names the file and key."""


@dataclasses.dataclass(frozen=True)
class Point:
  name: str
  overrides: dict  # Dotted config key -> value, in the order the sweep file gives them.


@dataclasses.dataclass(frozen=True)
class Sweep:
  spec: str  # As given to --config: FILE or FILE:ARG.
  base: ml_collections.ConfigDict
  points: list[Point]

  def config(self, point: Point) -> ml_collections.ConfigDict:
    """The base config with the point's overrides, locked like `capflax.main`'s."""
    return _override(self.base, point.overrides, self.spec.split(":", 1)[0], point.name)


def load(spec: str) -> Sweep:
  """Reads a sweep file (`FILE` or `FILE:ARG`) and checks every point against the base."""
  path, _, arg = spec.partition(":")
  if not os.path.isfile(path):
    raise SweepError(f"{path}: no such sweep file.")
  module_spec = importlib.util.spec_from_file_location("capflax_sweep_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  for fn in ("get_config", "get_sweep"):
    if not callable(getattr(module, fn, None)):
      raise SweepError(f"{path}: a sweep file defines get_config() and get_sweep(); "
                       f"{fn} is missing.")
  base = module.get_config(arg) if arg else module.get_config()
  sweep = module.get_sweep()
  unknown = set(sweep) - {"grid", "points", "budgets"}
  if unknown:
    raise SweepError(f"{path}: get_sweep() returned unknown entries {sorted(unknown)}; "
                     f"expected 'grid', 'points' and/or 'budgets'.")
  grid = dict(sweep.get("grid", {}))
  if "budgets" in sweep:
    grid = {BUDGET: _budgets(sweep["budgets"], path)} | grid
  points = _points(grid, sweep.get("points", [{}]), path)
  result = Sweep(spec, base, points)
  for p in points:  # Every key and value is checked before anything trains.
    config = result.config(p)  # A SweepError for an unknown key.
    try:
      config_check.check(config)
    except ConfigError as e:
      raise SweepError(f"{path}: point {p.name}: {e}") from None
  return result


def _budgets(budgets, path: str) -> list[float]:
  if (not isinstance(budgets, (list, tuple)) or not budgets
      or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and b > 0
                 for b in budgets)):
    raise SweepError(f"{path}: budgets must be a non-empty list of positive training FLOPs, "
                     f"got {budgets!r}.")
  return [float(b) for b in budgets]


def _points(grid: dict, explicit, path: str) -> list[Point]:
  """The explicit points times the product of the grid, named as the module docstring says."""
  for key, values in grid.items():
    if not isinstance(values, (list, tuple)) or not values:
      raise SweepError(f"{path}: grid[{key!r}] must be a non-empty list of values.")
  labelled = isinstance(explicit, dict)
  items = list(explicit.items()) if labelled else [(None, p) for p in explicit]
  if not items or not all(isinstance(p, dict) for _, p in items):
    raise SweepError(f"{path}: points must be a non-empty list of {{key: value}} dicts or a "
                     f"dict of them by label.")
  keys = list(grid) + [k for _, p in items for k in p]
  short = _short_names(keys)
  points = []
  for label, fixed in items:
    clash = set(fixed) & set(grid)
    if clash:
      raise SweepError(f"{path}: {sorted(clash)} set by both a point and the grid.")
    if labelled and not re.fullmatch(r"[\w.=,+-]+", label):
      raise SweepError(f"{path}: point label {label!r} must be letters, digits and . = , + - _")
    head = [label] if labelled else [f"{short[k]}={_value_name(v)}" for k, v in fixed.items()]
    for values in itertools.product(*grid.values()):
      swept = dict(zip(grid, values))
      name = ",".join(head + [f"{short[k]}={_value_name(v)}" for k, v in swept.items()])
      points.append(Point(name or "base", dict(fixed) | swept))
  names = [p.name for p in points]
  repeated = sorted({n for n in names if names.count(n) > 1})
  if repeated:
    raise SweepError(f"{path}: several points are named {repeated}; give them distinct values "
                     f"or labels.")
  return points


def _short_names(keys: list[str]) -> dict[str, str]:
  """Each key's shortest dotted suffix that no other key of the sweep ends with."""
  unique = list(dict.fromkeys(keys))
  short = {}
  for key in unique:
    parts = key.split(".")
    for n in range(1, len(parts) + 1):
      suffix = ".".join(parts[-n:])
      if not any(other != key and (other == suffix or other.endswith("." + suffix))
                 for other in unique):
        break
    short[key] = suffix
  return short


def _value_name(value) -> str:
  """A value as it reads in a folder name: 'B/16' -> 'B-16', 3e12 -> '3e+12'."""
  text = format(value, ".6g") if isinstance(value, float) else str(value)
  return re.sub(r"[^\w.+-]+", "-", text).strip("-") or "-"


def _override(base: ml_collections.ConfigDict, overrides: dict, path: str,
              name: str) -> ml_collections.ConfigDict:
  config = base.copy_and_resolve_references()
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
      node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
    if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
      raise SweepError(f"{path}: point {name}: override key {key!r} is not in the base config.")
    try:
      node[leaf] = value
    except (TypeError, ValueError) as e:
      raise SweepError(f"{path}: point {name}: {key}={value!r}: {e}") from None
  config.lock()
  return config


def select(sweep: Sweep, name: str | None) -> list[Point]:
  if name is None:
    return sweep.points
  for p in sweep.points:
    if p.name == name:
      return [p]
  raise SweepError(f"{sweep.spec}: no point named {name!r}; the points are "
                   f"{', '.join(p.name for p in sweep.points)}.")


def commands(sweep: Sweep, workdir: str, points: list[Point]) -> list[str]:
  """One command per point: the same sweep with `--point`, for a cluster or pod scheduler."""
  return [shlex.join(["python", "-m", "capflax.sweep", f"--config={sweep.spec}",
                      f"--workdir={workdir}", f"--point={p.name}"]) for p in points]


def plan(sweep: Sweep, workdir: str, points: list[Point]) -> str:
  """A table of what each point will train: size, cost and length (IsoFLOP steps included)."""
  rows = [("point", "params", "FLOPs/example", "steps", "warmup", "examples", "epochs",
           "train FLOPs")]
  for p in points:
    config, point_dir = sweep.config(p), os.fspath(epath.Path(workdir) / p.name)
    splits = dataset.load_splits(config, point_dir)
    vocab = dataset.vocabulary(config, point_dir, splits["train"])
    per_example = run_record.training_flops_per_example(config, len(vocab))
    elements = train.epoch_size(config, splits["train"])
    length = state.durations(config, elements, per_example)
    params = run_record.parameter_counts(run_record.abstract_params(config, len(vocab)))
    examples = length.total_steps * config.train.batch_size
    rows.append((p.name, f"{params['total']:,}", f"{per_example:.4g}", str(length.total_steps),
                 str(length.warmup_steps), f"{examples:,}", f"{examples / elements:.2f}",
                 f"{per_example * examples:.4g}"))
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                              for i, (cell, w) in enumerate(zip(r, widths))) for r in rows)


def record(sweep: Sweep, workdir: str) -> None:
  """Writes WORKDIR/sweep.json; refuses a workdir that holds a different sweep's points."""
  path = epath.Path(workdir) / SWEEP_FILE
  new = json.loads(json.dumps({
      "config": sweep.spec, "base": sweep.base.to_dict(),
      "points": [{"name": p.name, "overrides": p.overrides} for p in sweep.points]}))
  if path.exists():
    old = run_files.read_json(path)
    before, after = flatten_dict(old["base"], sep="."), flatten_dict(new["base"], sep=".")
    changed = sorted(k for k in before | after if before.get(k) != after.get(k))
    if changed:
      raise SweepError(f"{path}: this workdir holds a sweep with another base config "
                       f"(differing: {', '.join(changed[:5])}); use a new --workdir.")
    before = {p["name"]: p["overrides"] for p in old["points"]}
    for p in new["points"]:
      if p["name"] in before and before[p["name"]] != p["overrides"]:
        raise SweepError(f"{path}: point {p['name']} had the overrides {before[p['name']]}, "
                         f"now {p['overrides']}; use a new --workdir.")
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name: `--point` runs of one sweep may write this file at once.
    tmp = path.with_name(f"{SWEEP_FILE}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(new, indent=2))
    tmp.replace(path)


def run(sweep: Sweep, workdir: str, points: list[Point] | None = None) -> dict[str, dict]:
  """Trains the points (all by default) in turn; returns their results by name.

  Stops at a preempted point (its checkpoint saved), as `capflax.main` would; its result is
  then `{'preempted': True, 'step': ..., 'signal': ...}`.
  """
  points = sweep.points if points is None else points
  record(sweep, workdir)
  results = {}
  for i, p in enumerate(points, 1):
    point_dir = epath.Path(workdir) / p.name
    where = f"point {i}/{len(points)}: {p.name}"
    if all((point_dir / f).exists() for f in FINISHED):
      logging.info("%s: finished (%s), skipped.", where, point_dir)
      results[p.name] = run_files.read_json(point_dir / run_files.RESULTS)
      continue
    logging.info("%s: training in %s (%s).", where, point_dir,
                 ", ".join(f"{k}={v!r}" for k, v in p.overrides.items()) or "the base config")
    result = train.train_and_evaluate(sweep.config(p), os.fspath(point_dir))
    if result.get("preempted"):
      logging.warning("%s: preempted at step %d; the sweep stops here. Rerun the same "
                      "command to resume.", where, result["step"])
      results[p.name] = result
      break
    results[p.name] = result
  return results


def summary(results: dict[str, dict]) -> str:
  """One line per point: the step, final train loss and each evaluated split's CIDEr-D
  (a stopped point: its step and the signal that stopped it)."""
  splits = list(dict.fromkeys(s for r in results.values() for s in r.get("eval", {})))
  width = max([len("point"), *map(len, results)])
  lines = [f"{'point':<{width}}  {'step':>6}  {'train_loss':>10}"
           + "".join(f"  {s + ' cider_d':>13}" for s in splits)]
  for name, r in results.items():
    if r.get("preempted"):
      lines.append(f"{name:<{width}}  {r['step']:>6}  stopped by {r.get('signal', 'SIGTERM')}; "
                   f"rerun to resume")
      continue
    loss = f"{r['train_loss']:10.4f}" if r["train_loss"] is not None else f"{'-':>10}"
    lines.append(f"{name:<{width}}  {r['step']:>6}  {loss}" + "".join(
        f"  {r['eval'][s]['cider_d']:13.4f}" if s in r["eval"] else f"  {'-':>13}"
        for s in splits))
  return "\n".join(lines)




def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  sweep = load(FLAGS.config)  # A SweepError is a ConfigError: one line, by cli.run.
  points = select(sweep, FLAGS.point)
  if FLAGS.print_commands:
    print("\n".join(commands(sweep, FLAGS.workdir, points)))
    return
  if FLAGS.print_plan:
    print(plan(sweep, FLAGS.workdir, points))
    return
  cli.start(FLAGS)
  results = run(sweep, FLAGS.workdir, points)
  if jax.process_index() == 0:
    print(summary(results))
  if any(r.get("signal") == "SIGINT" for r in results.values()):
    sys.exit(cli.INTERRUPTED)


if __name__ == "__main__":
  _define_flags()
  cli.run(main, "capflax.sweep")
