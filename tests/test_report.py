"""`capflax.report` on fabricated run.json files: tables, fits, plots and bad input."""

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from capflax import report
from tests import synthetic_scaling as synthetic
from tests.conftest import REPO

TOKENS_PER_EXAMPLE = 10


def fake_run(root, name, width, steps, seed, loss, cider, splits=("val", "test"),
             recall=None) -> str:
  """A run.json as `capflax.run_record.write` lays it out; returns its path."""
  params = 1000 * width
  examples = 8 * steps
  per_example = 6.0 * params * TOKENS_PER_EXAMPLE
  record = {
      "config": {"seed": seed, "model": {"width": width},
                 "train": {"num_steps": steps, "batch_size": 8}},
      "seed": seed, "git": {"commit": None, "dirty": None},
      "params": {"encoder": 600 * width, "decoder": 400 * width, "total": params},
      "flops": {"per_example": per_example, "total": per_example * examples},
      "seen": {"steps": steps, "examples": examples, "tokens": TOKENS_PER_EXAMPLE * examples},
      "wall_time_s": 1.5 * steps,
      "metrics": {s: {"loss": loss + (0.5 if s == "test" else 0.0), "cider_d": cider,
                      "bleu4": cider / 10, "num_images": 100}
                  | ({"scene": {"object_recall": recall}} if recall is not None else {})
                  for s in splits}}
  os.makedirs(os.path.join(root, name))
  path = os.path.join(root, name, "run.json")
  with open(path, "w") as f:
    json.dump(record, f)
  return path


@pytest.fixture
def three_runs(tmp_path) -> str:
  """Two seeds of one config and one larger, longer run."""
  root = str(tmp_path / "sweep")
  fake_run(root, "small/seed1", 16, 10, 1, loss=3.2, cider=0.3)
  fake_run(root, "small/seed0", 16, 10, 0, loss=3.0, cider=0.2)
  fake_run(root, "large", 32, 20, 0, loss=2.5, cider=0.5)
  return root


COLUMNS = ["run", "encoder_params", "decoder_params", "total_params", "train_flops", "examples",
           "tokens", "steps", "wall_time_s", "seed", "val_loss", "val_cider_d", "val_bleu4",
           "test_loss", "test_cider_d", "test_bleu4", "model.width", "train.num_steps"]


def test_csv_has_one_row_per_run_and_the_differing_config(three_runs, tmp_path):
  out, _, _ = report.report([three_runs], str(tmp_path / "out"))
  with open(os.path.join(out, "runs.csv")) as f:
    reader = csv.DictReader(f)
    assert reader.fieldnames == COLUMNS  # batch_size is the same everywhere: no column.
    rows = list(reader)
  assert rows == [
      {"run": "small/seed0", "encoder_params": "9600", "decoder_params": "6400",
       "total_params": "16000", "train_flops": str(6.0 * 16000 * 10 * 80), "examples": "80",
       "tokens": "800", "steps": "10", "wall_time_s": "15.0", "seed": "0", "val_loss": "3.0",
       "val_cider_d": "0.2", "val_bleu4": str(0.2 / 10), "test_loss": "3.5",
       "test_cider_d": "0.2", "test_bleu4": str(0.2 / 10), "model.width": "16",
       "train.num_steps": "10"},
      {"run": "small/seed1", "encoder_params": "9600", "decoder_params": "6400",
       "total_params": "16000", "train_flops": str(6.0 * 16000 * 10 * 80), "examples": "80",
       "tokens": "800", "steps": "10", "wall_time_s": "15.0", "seed": "1", "val_loss": "3.2",
       "val_cider_d": "0.3", "val_bleu4": str(0.3 / 10), "test_loss": "3.7",
       "test_cider_d": "0.3", "test_bleu4": str(0.3 / 10), "model.width": "16",
       "train.num_steps": "10"},
      {"run": "large", "encoder_params": "19200", "decoder_params": "12800",
       "total_params": "32000", "train_flops": str(6.0 * 32000 * 10 * 160), "examples": "160",
       "tokens": "1600", "steps": "20", "wall_time_s": "30.0", "seed": "0", "val_loss": "2.5",
       "val_cider_d": "0.5", "val_bleu4": str(0.5 / 10), "test_loss": "3.0",
       "test_cider_d": "0.5", "test_bleu4": str(0.5 / 10), "model.width": "32",
       "train.num_steps": "20"}]


def test_markdown_table(three_runs, tmp_path):
  out, _, _ = report.report([three_runs], str(tmp_path / "out"))
  with open(os.path.join(out, "runs.md")) as f:
    lines = f.read().splitlines()
  assert lines[2] == "| " + " | ".join(COLUMNS) + " |"
  assert lines[3] == "|" + "|".join(["---"] * len(COLUMNS)) + "|"
  assert lines[6] == ("| large | 19.2k | 12.8k | 32k | 307M | 160 | 1.6k | 20 | "
                      "30.0 | 0 | 2.5 | 0.5 | 0.05 | 3 | 0.5 | 0.05 | 32 | 20 |")
  for plot in ("loss_vs_compute.png", "cider_d_vs_params.png"):
    assert f"![{plot}]({plot})" in lines


def test_a_run_started_from_another_is_tabled_apart_and_not_plotted(three_runs, tmp_path):
  """SCST after cross-entropy: its row names its objective and parent; the fits and plots
  see the three runs from scratch only (an SCST run's own FLOPs would sit far left)."""
  _, before, plots = report.report([three_runs], str(tmp_path / "before"))
  path = fake_run(three_runs, "large_scst", 32, 5, 0, loss=2.9, cider=0.9)
  with open(path) as f:
    record = json.load(f)
  record |= {"objective": {"name": "scst", "settings": {"scst.num_samples": 5}},
             "init_from": {"workdir": os.path.join(three_runs, "large"), "step": 20}}
  record["config"]["train"]["objective"] = "scst"
  with open(path, "w") as f:
    json.dump(record, f)
  out, notes, after_plots = report.report([three_runs], str(tmp_path / "out"))
  assert notes[1:] == before and after_plots == plots
  assert notes[0] == ("1 run(s) started from another run's weights (init_from_workdir) are "
                      "tabled, not plotted: their FLOPs and data add to their parent's.")
  with open(os.path.join(out, "runs.csv")) as f:
    rows = {row["run"]: row for row in csv.DictReader(f)}
  assert rows["large_scst"]["objective"] == "scst" and rows["large"]["objective"] == "xe"
  assert rows["large_scst"]["init_from"] == os.path.join(three_runs, "large") + "@20"
  assert rows["large"]["init_from"] == "" and rows["large_scst"]["train.objective"] == "scst"


def test_seeds_of_one_config_are_one_point(three_runs):
  runs = {p: report.load_run(p) for p in report.find_runs([three_runs])}
  small, large = report.points(runs, "val", ["loss", "cider_d"])
  assert (small["seeds"], large["seeds"]) == (2, 1)
  assert small["loss"] == pytest.approx(3.1)
  assert small["loss_std"] == pytest.approx(np.sqrt(((3.0 - 3.1)**2 + (3.2 - 3.1)**2) / 1))
  assert sorted(small["cider_d_runs"]) == [0.2, 0.3]
  assert large["loss_std"] == 0.0


def test_plots_are_png_images(three_runs):
  out, _, _ = report.report([three_runs])
  assert out == os.path.join(three_runs, "report")
  for metric in ("loss", "cider_d"):
    for against in ("compute", "params"):
      with Image.open(os.path.join(out, f"{metric}_vs_{against}.png")) as image:
        assert image.format == "PNG" and image.size[0] > 600 and image.size[1] > 400
        image.verify()


def test_compute_fit_recovers_the_exponent_of_the_frontier(tmp_path):
  """One model trained longer and longer: compute grows with the data, every point is on
  the frontier, and the loss (CIDEr-D) follows C^-0.1 (C^0.2) exactly."""
  root = str(tmp_path / "sweep")
  for steps in (10, 20, 40, 80):
    flops = 6.0 * 16000 * TOKENS_PER_EXAMPLE * 8 * steps
    fake_run(root, f"s{steps}", 16, steps, 0, loss=7.0 * flops**-0.1, cider=1e-3 * flops**0.2)
  _, notes, _ = report.report([root])
  assert notes[0].startswith("val loss vs training compute: exponent -0.1000 (y = 7 · C^-0.100,"
                             " fit to 4 frontier points)")
  assert notes[2].startswith("val cider_d vs training compute: exponent 0.2000 (y = 0.001 · "
                             "C^0.200, fit to 4 frontier points)")
  assert notes[1] == "val loss vs parameters: no fit (no data size has two model sizes)"


def test_params_fit_per_data_size(tmp_path):
  root = str(tmp_path / "sweep")
  for width in (16, 32, 64):
    for steps in (10, 40):
      n, d = 1000 * width, 8 * steps
      fake_run(root, f"w{width}_s{steps}", width, steps, 0, loss=50.0 * n**-0.05 * d**-0.1,
               cider=1e-3 * n**0.2 * d**0.1)
  _, notes, _ = report.report([root])
  a80, a320 = 50.0 * 80**-0.1, 50.0 * 320**-0.1
  assert notes[1] == (f"val loss vs parameters: exponent -0.0500 at 80 examples (y = {a80:.3g}"
                      f" · N^-0.050); exponent -0.0500 at 320 examples (y = {a320:.3g} · "
                      "N^-0.050)")
  assert "exponent 0.2000 at 80 examples" in notes[3]


def test_split_defaults_to_val_then_test(tmp_path):
  root = str(tmp_path / "sweep")
  fake_run(root, "a", 16, 10, 0, loss=3.0, cider=0.2)
  fake_run(root, "b", 32, 10, 0, loss=2.0, cider=0.4, splits=("test",))
  _, notes, _ = report.report([root])
  assert all(n.startswith("test ") for n in notes[:4])
  with open(os.path.join(root, "report", "runs.csv")) as f:
    row_a = next(csv.DictReader(f))
  assert row_a["val_loss"] == "3.0" and row_a["test_loss"] == "3.5"
  with pytest.raises(report.ReportError) as e:
    report.report([root], split="val")
  assert str(e.value) == f"{root}/b/run.json: missing key 'metrics.val.loss'."


def test_bad_records_are_named_with_their_key(tmp_path):
  root = str(tmp_path / "sweep")
  path = fake_run(root, "a", 16, 10, 0, loss=3.0, cider=0.2)
  with open(path) as f:
    record = json.load(f)
  del record["flops"]["total"]
  with open(path, "w") as f:
    json.dump(record, f)
  with pytest.raises(report.ReportError) as e:
    report.report([root])
  assert str(e.value) == f"{path}: missing key 'flops.total'."
  record["flops"]["total"] = 1e9
  record["seen"]["examples"] = "many"
  with open(path, "w") as f:
    json.dump(record, f)
  with pytest.raises(report.ReportError) as e:
    report.report([root])
  assert str(e.value) == f"{path}: key 'seen.examples' is 'many', not a number."


def test_no_runs(tmp_path):
  with pytest.raises(report.ReportError) as e:
    report.report([str(tmp_path), str(tmp_path / "nowhere")])
  assert str(e.value) == (f"no run.json found under {tmp_path}, {tmp_path}/nowhere "
                          f"(no such folder: {tmp_path}/nowhere).")


def run_report(*args):
  return subprocess.run([sys.executable, "-m", "capflax.report", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=120)


def test_command_line(three_runs, tmp_path):
  out = run_report(three_runs, f"--out={tmp_path}/out", "--split=test")
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.splitlines()[0].startswith("test loss vs training compute: exponent ")
  assert out.stdout.splitlines()[-1] == (
      f"Wrote runs.csv, runs.md and 4 plots to {tmp_path}/out")
  assert sorted(os.listdir(tmp_path / "out")) == [
      "cider_d_vs_compute.png", "cider_d_vs_params.png", "loss_vs_compute.png",
      "loss_vs_params.png", "runs.csv", "runs.md"]


def test_command_line_error_is_one_line(tmp_path):
  bad = tmp_path / "sweep" / "a" / "run.json"
  bad.parent.mkdir(parents=True)
  bad.write_text('{"config": {"seed": 0},')
  out = run_report(str(tmp_path / "sweep"))
  assert out.returncode == 1
  assert "Traceback" not in out.stderr and out.stdout == ""
  assert out.stderr.splitlines()[-1].startswith(
      f"capflax.report: {bad}: not valid JSON (Expecting property name")


def test_help_lists_the_flags():
  out = run_report("--help")  # absl prints the help and exits with status 1.
  assert "--out: Folder for runs.csv" in out.stdout and "--split: Split whose" in out.stdout
  assert "--bootstrap: Bootstrap replicates" in out.stdout and "--level: Coverage" in out.stdout


BUDGETS = (1e10, 1e11, 1e12, 1e13, 1e14)


def synthetic_sweep(root, seed=0) -> list:
  """run.json records of an IsoFLOP sweep drawn from a known L(N, D) (tests/synthetic_scaling:
  5 budgets x 7 sizes x 3 seeds, 1% noise), training curves included."""
  runs = synthetic.sweep(np.random.default_rng(seed), budgets=BUDGETS, sizes=7)
  for i, r in enumerate(runs):
    record = {
        "config": {"seed": r.seed, "model": {"params": r.params},
                   "train": {"flops_budget": r.budget, "batch_size": 8}},
        "seed": r.seed,
        "params": {"encoder": 0.6 * r.params, "decoder": 0.4 * r.params, "total": r.params},
        "flops": {"per_example": r.flops_per_example, "total": r.compute},
        "seen": {"steps": r.examples / 8, "examples": r.examples, "tokens": 10 * r.examples},
        "wall_time_s": 1.0,
        "metrics": {"val": {"loss": r.loss, "cider_d": 1 / r.loss, "bleu4": 0.1}},
        "curve": [{"step": x / 8, "examples": x, "tokens": 10 * x,
                   "flops": x * r.flops_per_example, "val": {"loss": y}}
                  for x, y in zip(r.curve_examples, r.curve_loss)]}
    os.makedirs(os.path.join(root, f"run{i}"))
    with open(os.path.join(root, f"run{i}", "run.json"), "w") as f:
      json.dump(record, f)
  return runs


def test_compute_optimal_section_on_a_known_law(tmp_path):
  root = str(tmp_path / "sweep")
  runs = synthetic_sweep(root)
  out, notes, plots = report.report([root], bootstrap=30)
  optimal = notes[4:]
  assert optimal[0] == ("90% bootstrap intervals over 30 replicates; val teacher-forced loss; "
                        "C = training FLOPs, D = examples seen")
  truth = synthetic.N_OPT_EXPONENT
  for approach, line in zip((1, 2, 3), optimal[1:4]):
    found = re.match(rf"Approach {approach} \(.*?\): N_opt ~ C\^(\S+) \[(\S+), (\S+)\], "
                     rf"D_opt ~ C\^(\S+) \[(\S+), (\S+)\]", line)
    assert found, line
    n_opt, low, high, d_opt = (float(found.group(k).rstrip(",]")) for k in (1, 2, 3, 4))
    # Tolerances as tests/test_scaling_fits.py states them.
    assert n_opt == pytest.approx(truth, abs=0.03 if approach == 1 else 0.02)
    assert low <= n_opt <= high
    assert d_opt == pytest.approx(1 - n_opt, abs=1e-3)  # gamma = 1: the exponents sum to 1.
  assert "; N_opt per budget: 1e+10 FLOPs -> " in optimal[2]
  alpha = float(re.search(r"alpha (\S+) \[", optimal[3]).group(1))
  beta = float(re.search(r"beta (\S+) \[", optimal[3]).group(1))
  assert alpha == pytest.approx(synthetic.TRUE["alpha"], abs=0.03)
  assert beta == pytest.approx(synthetic.TRUE["beta"], abs=0.03)
  stds = [np.std([r.loss for r in runs[i:i + 3]], ddof=1) for i in range(0, len(runs), 3)]
  assert optimal[4] == (f"Seeds: 35 configuration(s) with 3-3 seeds; val loss std over seeds "
                        f"median {np.median(stds):.4f}, max {max(stds):.4f} (error bars; the "
                        f"intervals resample seeds).")
  assert optimal[5].startswith("N_opt exponent: the approaches agree (1: ")
  assert optimal[6].startswith("D_opt exponent: the approaches agree (1: ")
  assert plots[4:] == ["optimal_envelope.png", "optimal_isoflop.png", "optimal_parametric.png"]
  for plot in plots[4:]:
    with Image.open(os.path.join(out, plot)) as image:
      assert image.format == "PNG" and image.size[0] > 1200
  with open(os.path.join(out, "runs.md")) as f:
    text = f.read()
  section = text.split("## Compute-optimal model size and data (Chinchilla's three approaches)"
                       "\n\n")[1]
  assert section.splitlines()[:len(optimal)] == [f"- {n}" for n in optimal]
  assert section.rstrip().splitlines()[-3:] == [f"![{p}]({p})" for p in plots[4:]]


def test_runs_without_budgets_or_curves_say_which_approaches_could_not_fit(three_runs):
  _, notes, plots = report.report([three_runs], bootstrap=5)
  assert notes[4:] == [
      "90% bootstrap intervals over 5 replicates; val teacher-forced loss; C = training FLOPs, "
      "D = examples seen",
      "Seeds: 1 configuration(s) with 2-2 seeds; val loss std over seeds median 0.1414, max "
      "0.1414 (error bars; the intervals resample seeds).",
      "Too few approaches could be fitted to compare (0 of 3).",
      "Approach 1 (training-curve envelope) not fitted: the training curves of different sizes "
      "do not overlap in compute.",
      "Approach 2 (IsoFLOP profiles) not fitted: IsoFLOP profiles need runs at two or more "
      "budgets, got 0.",
      "Approach 3 (parametric L(N, D)) not fitted: the parametric fit has 5 parameters and 2 "
      "configurations."]
  assert len(plots) == 4


def test_a_bad_curve_point_is_named(tmp_path):
  root = str(tmp_path / "sweep")
  path = fake_run(root, "a", 16, 10, 0, loss=3.0, cider=0.2)
  with open(path) as f:
    record = json.load(f)
  record["curve"] = [{"step": 5, "examples": 40, "flops": 1e9, "val": {"loss": 2.0}},
                     {"step": 10, "examples": 80, "flops": 2e9, "val": {}}]
  with open(path, "w") as f:
    json.dump(record, f)
  with pytest.raises(report.ReportError) as e:
    report.report([root])
  assert str(e.value) == f"{path}: curve[1]: missing key 'val.loss'."


def test_whole_object_recall_is_plotted_when_every_run_has_scene_scores(tmp_path):
  root = str(tmp_path / "sweep")
  fake_run(root, "a", 16, 10, 0, loss=3.0, cider=0.2, recall=0.4)
  fake_run(root, "b", 32, 20, 0, loss=2.5, cider=0.5, recall=0.8)
  runs = {p: report.load_run(p) for p in report.find_runs([root])}
  assert report.plotted(runs, "val") == ["loss", "cider_d", "object_recall"]
  a, b = report.points(runs, "val", ["object_recall"])
  assert (a["object_recall"], b["object_recall"]) == (0.4, 0.8)
  out, _, _ = report.report([root], str(tmp_path / "out"))
  assert {"object_recall_vs_compute.png", "object_recall_vs_params.png"} <= set(os.listdir(out))
  fake_run(root, "c", 64, 20, 0, loss=2.0, cider=0.6)  # No scenes.json behind this one.
  runs = {p: report.load_run(p) for p in report.find_runs([root])}
  assert report.plotted(runs, "val") == ["loss", "cider_d"]
