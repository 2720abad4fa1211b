"""Sweeps: points and names, skip and resume, commands for a scheduler, reruns from records."""

import json
import logging
import os
import subprocess
import sys

import pytest
from absl import flags
from ml_collections import config_flags

from capflax import config_check, sweep, train
from configs import demo, from_record
from tests.conftest import REPO

TINY_SWEEP = '''
from configs import demo


def get_config():
  return demo.get_config("tiny")


def get_sweep():
  return {"grid": {"seed": [0, 1]}}
'''


def _write(path, text):
  path.write_text(text)
  return str(path)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
  """(sweep file, sweep workdir, results by point) of a 2-point tiny sweep, trained once."""
  root = tmp_path_factory.mktemp("sweep")
  spec = _write(root / "tiny_sweep.py", TINY_SWEEP)
  workdir = str(root / "out")
  return spec, workdir, sweep.run(sweep.load(spec), workdir)


def test_a_sweep_trains_every_point_in_its_own_workdir(swept):
  spec, workdir, results = swept
  assert list(results) == ["seed=0", "seed=1"]
  for seed, name in enumerate(results):
    with open(os.path.join(workdir, name, "results.json")) as f:
      assert json.load(f)["eval"] == results[name]["eval"]
    with open(os.path.join(workdir, name, "config.json")) as f:
      assert json.load(f)["seed"] == seed
  assert results["seed=0"]["train_loss"] != results["seed=1"]["train_loss"]
  with open(os.path.join(workdir, "sweep.json")) as f:
    record = json.load(f)
  assert record == {
      "config": spec, "base": json.loads(demo.get_config("tiny").to_json()),
      "points": [{"name": "seed=0", "overrides": {"seed": 0}},
                 {"name": "seed=1", "overrides": {"seed": 1}}]}


def test_rerun_skips_finished_points(swept, monkeypatch, caplog):
  spec, workdir, results = swept
  done = os.path.join(workdir, "seed=0")
  mtimes = [os.stat(os.path.join(done, f)).st_mtime_ns for f in sweep.FINISHED]

  def no_training(config, workdir):
    raise AssertionError(f"trained {workdir} again")
  monkeypatch.setattr(train, "train_and_evaluate", no_training)
  caplog.set_level(logging.INFO)
  again = sweep.run(sweep.load(spec), workdir)
  assert again == json.loads(json.dumps(results))
  assert [os.stat(os.path.join(done, f)).st_mtime_ns for f in sweep.FINISHED] == mtimes
  assert f"point 1/2: seed=0: finished ({done}), skipped." in caplog.text
  assert "point 2/2: seed=1: finished" in caplog.text


def test_a_preempted_point_ends_the_sweep(swept, tmp_path, monkeypatch):
  spec, _, _ = swept
  trained = []

  def preempted(config, workdir):
    trained.append(os.path.basename(workdir))
    return {"preempted": True, "step": 3, "signal": "SIGTERM"}
  monkeypatch.setattr(train, "train_and_evaluate", preempted)
  results = sweep.run(sweep.load(spec), str(tmp_path))
  assert results == {"seed=0": {"preempted": True, "step": 3, "signal": "SIGTERM"}}
  assert trained == ["seed=0"]
  # The summary of a `--point` job ended by SIGTERM: its step and why, not a TypeError.
  assert sweep.summary(results).splitlines() == [
      "point     step  train_loss",
      "seed=0       3  stopped by SIGTERM; rerun to resume"]


def test_the_same_point_twice_gives_the_same_numbers(swept, tmp_path):
  spec, _, results = swept
  s = sweep.load(spec)
  again = sweep.run(s, str(tmp_path), sweep.select(s, "seed=1"))
  assert list(again) == ["seed=1"]
  assert again["seed=1"]["eval"] == results["seed=1"]["eval"]
  assert again["seed=1"]["train_loss"] == results["seed=1"]["train_loss"]


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")  # config_flags' import.
def test_rerun_from_the_record_alone(swept, tmp_path):
  """`--config=configs/from_record.py:RECORD` (as capflax.main parses it) in a new workdir."""
  _, workdir, results = swept
  point_dir = os.path.join(workdir, "seed=1")
  record = os.path.join(point_dir, "run.json")  # Written once the run record is wired in.
  if not os.path.exists(record):
    record = os.path.join(point_dir, "config.json")
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=flag_values, lock_config=True)
  flag_values(["main", f"--config={REPO / 'configs' / 'from_record.py'}:{record}"])
  rerun = train.train_and_evaluate(flag_values.config, str(tmp_path))
  assert rerun["eval"] == results["seed=1"]["eval"]
  assert rerun["train_loss"] == results["seed=1"]["train_loss"]


def test_from_record_reads_run_json_config_json_or_a_workdir(swept, tmp_path):
  _, workdir, _ = swept
  point_dir = os.path.join(workdir, "seed=1")
  with open(os.path.join(point_dir, "config.json")) as f:
    config = json.load(f)
  assert from_record.get_config(os.path.join(point_dir, "config.json")).to_dict() == config
  run_json = _write(tmp_path / "run.json", json.dumps({"config": config, "seed": 1}))
  assert from_record.get_config(run_json).to_dict() == config
  in_point_dir = os.path.join(point_dir, "run.json")  # A workdir: its run.json, if any, first.
  if os.path.exists(in_point_dir):
    with open(in_point_dir) as f:
      config = json.load(f)["config"]
  assert from_record.get_config(point_dir).to_dict() == config
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="empty: holds neither run.json nor config.json"):
    from_record.get_config(str(tmp_path / "empty"))
  with pytest.raises(ValueError, match="not a capflax run.json or config.json"):
    from_record.get_config(_write(tmp_path / "other.json", '{"config": {"seed": 1}}'))


def test_print_commands(swept):
  spec, _, _ = swept
  out = subprocess.run(
      [sys.executable, "-m", "capflax.sweep", f"--config={spec}", "--workdir=/sweeps/tiny",
       "--print_commands"], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.splitlines() == [
      f"python -m capflax.sweep --config={spec} --workdir=/sweeps/tiny --point=seed=0",
      f"python -m capflax.sweep --config={spec} --workdir=/sweeps/tiny --point=seed=1"]


def test_an_unknown_override_key_is_one_line_naming_the_key_and_file(tmp_path):
  spec = _write(tmp_path / "typo.py", TINY_SWEEP.replace('"seed"', '"model.decoder.widht"'))
  with pytest.raises(sweep.SweepError) as error:
    sweep.load(spec)
  assert str(error.value) == (
      f"{spec}: point widht=0: override key 'model.decoder.widht' is not in the base config.")


def test_points_are_named_by_their_values_with_the_shortest_unique_keys():
  grid = {"model.encoder.width": [32], "model.decoder.width": [16, 64], "seed": [0]}
  points = sweep._points(grid, [{"data.train_fraction": 0.5}, {"model.encoder.variant": "S/16"}],
                         "s.py")
  assert [p.name for p in points] == [
      "train_fraction=0.5,encoder.width=32,decoder.width=16,seed=0",
      "train_fraction=0.5,encoder.width=32,decoder.width=64,seed=0",
      "variant=S-16,encoder.width=32,decoder.width=16,seed=0",
      "variant=S-16,encoder.width=32,decoder.width=64,seed=0"]
  assert points[3].overrides == {"model.encoder.variant": "S/16", "model.encoder.width": 32,
                                 "model.decoder.width": 64, "seed": 0}
  labelled = sweep._points({"seed": [0, 1]}, {"small": {"model.decoder.depth": 1}}, "s.py")
  assert [(p.name, p.overrides) for p in labelled] == [
      ("small,seed=0", {"model.decoder.depth": 1, "seed": 0}),
      ("small,seed=1", {"model.decoder.depth": 1, "seed": 1})]
  with pytest.raises(sweep.SweepError, match=r"^s.py: several points are named \['seed=0'\]"):
    sweep._points({"seed": [0, 0]}, [{}], "s.py")


def test_a_workdir_of_another_sweep_is_refused(swept, tmp_path):
  _, workdir, _ = swept
  changed = _write(tmp_path / "changed.py", TINY_SWEEP.replace(
      '  return demo.get_config("tiny")',
      '  c = demo.get_config("tiny")\n  c.train.num_steps = 7\n  return c'))
  with pytest.raises(sweep.SweepError, match=r"another base config \(differing: "
                     r"train.num_steps\); use a new --workdir"):
    sweep.run(sweep.load(changed), workdir)


ISOFLOP_SWEEP = '''
from configs import demo


def get_config():
  c = demo.get_config("tiny")
  c.train.update(num_steps=0, flops_budget=1.0)
  c.optim.warmup_fraction = 0.25
  return c


def get_sweep():
  return {"budgets": [2.5e7], "points": {"w16": {"model.decoder.width": 16}}}
'''


def test_an_isoflop_point_trains_for_the_steps_that_match_its_budget(tmp_path):
  spec = _write(tmp_path / "isoflop.py", ISOFLOP_SWEEP)
  s = sweep.load(spec)
  assert [(p.name, p.overrides) for p in s.points] == [
      ("w16,flops_budget=2.5e+07", {"model.decoder.width": 16, "train.flops_budget": 2.5e7})]
  workdir = str(tmp_path / "out")
  header, row = sweep.plan(s, workdir, s.points).splitlines()
  assert header.split() == ["point", "params", "FLOPs/example", "steps", "warmup", "examples",
                            "epochs", "train", "FLOPs"]
  sweep.run(s, workdir)
  with open(os.path.join(workdir, "w16,flops_budget=2.5e+07", "run.json")) as f:
    record = json.load(f)
  per_step = record["flops"]["per_example"] * 8  # batch 8
  steps = record["seen"]["steps"]
  assert steps == round(2.5e7 / per_step) >= 3
  name, params, per_example, planned, warmup, examples, _, total = row.split()
  assert (name, int(params.replace(",", "")), float(per_example), int(planned)) == (
      "w16,flops_budget=2.5e+07", record["params"]["total"],
      float(f"{record['flops']['per_example']:.4g}"), steps)
  assert int(warmup) == round(0.25 * steps)
  assert int(examples.replace(",", "")) == record["seen"]["examples"]
  assert abs(record["flops"]["total"] - 2.5e7) <= per_step / 2
  assert record["config"]["train"]["flops_budget"] == 2.5e7


@pytest.mark.parametrize("budgets", [[], [1e12, -1.0], "1e12", [True]])
def test_bad_budgets_are_one_line(tmp_path, budgets):
  spec = _write(tmp_path / "bad.py", ISOFLOP_SWEEP.replace("[2.5e7]", repr(budgets)))
  with pytest.raises(sweep.SweepError) as error:
    sweep.load(spec)
  assert str(error.value) == (f"{spec}: budgets must be a non-empty list of positive training "
                              f"FLOPs, got {budgets!r}.")


@pytest.mark.parametrize("name,budgets", [
    ("flickr8k_isoflop", ("3e+15", "1e+16", "3e+16")),
    ("coco_isoflop", ("3e+16", "1e+17", "3e+17", "1e+18"))])
def test_pod_isoflop_sweeps_print_one_command_per_budget_size_and_seed(name, budgets):
  spec = f"configs/scaling/{name}.py:/data/{name}"
  out = subprocess.run(
      [sys.executable, "-m", "capflax.sweep", f"--config={spec}", "--workdir=gs://b/sweep",
       "--print_commands"], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  sizes = ["Ti16-d256x3", "S16-d384x4", "S16-d512x6", "B16-d512x6", "B16-d768x8"]
  assert out.stdout.splitlines() == [
      f"python -m capflax.sweep --config={spec} --workdir=gs://b/sweep "
      f"--point={size},flops_budget={budget},seed={seed}"
      for size in sizes for budget in budgets for seed in (0, 1)]
  s = sweep.load(spec)
  config = s.config(s.points[-1])
  assert config.train.flops_budget == float(budgets[-1]) and config.data.dir == f"/data/{name}"
  assert (config.model.encoder.variant, config.model.decoder.width,
          config.model.decoder.num_heads) == ("B/16", 768, 12)
  assert config.optim.warmup_fraction == 0.05 and config.train.curve_points == 20


def test_cpu_isoflop_sweep_has_three_budgets_by_four_sizes():
  s = sweep.load("configs/scaling/cpu_isoflop.py")
  budgets = {p.overrides["train.flops_budget"] for p in s.points}
  widths = {p.overrides["model.decoder.width"] for p in s.points}
  assert len(budgets) >= 3 and len(widths) >= 4
  assert len(s.points) == len(budgets) * len(widths) * len({p.overrides["seed"] for p in s.points})
  assert all(s.config(p).data.dir == "" for p in s.points)  # The built-in data.


def test_cpu_sweep_keeps_the_model_it_was_measured_with():
  """docs/scaling.md's CPU sweep: the conv-stem ViT at 64 px on 4,000 scenes, whatever the
  demo's variants become."""
  s = sweep.load("configs/scaling/cpu.py")
  assert len(s.points) == 6
  for point in s.points:
    config = s.config(point)
    config_check.check(config)
    enc = config.model.encoder
    assert (enc.name, enc.stem, enc.posemb, enc.width) == (
        "vit", "conv", "sincos2d", config.model.decoder.width)
    assert (config.data.synthetic_set, config.data.synthetic_images, config.data.image_size,
            config.data.max_len, config.optim.lr, config.train.num_steps) == (
                "scenes", 4000, 64, 36, 1e-3, 800)
