"""`capflax.evaluate` on the shared tiny run: every image once, training's numbers, any search."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from capflax import evaluate
from capflax.data import dataset
from capflax.run_files import load_config
from tests.conftest import REPO


def test_reproduces_the_final_evaluation_of_training(tiny_run):
  workdir, results = tiny_run
  out = evaluate.evaluate(workdir, "test", {}, meteor=False, output="eval_again.json")
  test_records = dataset.load_splits(load_config(workdir), workdir)["test"]
  assert sorted(out["captions"]) == sorted(r.filename for r in test_records)
  assert out["metrics"] == results["eval"]["test"]  # The scene scores too: one evaluator.
  assert "shape_precision" in out["metrics"]["scene"]
  with open(os.path.join(workdir, "scene_test.json")) as f:
    assert out["scene_images"] == json.load(f)
  with open(os.path.join(workdir, "captions_test.json")) as f:
    assert out["captions"] == json.load(f)
  with open(os.path.join(workdir, "eval_again.json")) as f:
    assert json.load(f) == out
  assert out["step"] == 6 and out["decode"]["method"] == "greedy"


def test_command_line_beam_search_on_eight_devices(tiny_run):
  """Beam search with the batch sharded over 8 devices: the same captions as on one."""
  workdir, _ = tiny_run
  one = evaluate.evaluate(workdir, "val", {"method": "beam", "beam_size": 3}, batch_size=8,
                          meteor=False, output="eval_val_beam1.json")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
  out = subprocess.run(
      [sys.executable, "-m", "capflax.evaluate", f"--workdir={workdir}", "--split=val",
       "--beam_size=3", "--alpha=0.6", "--batch_size=8", "--output=eval_val_beam8.json"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  printed = json.loads(out.stdout.strip().splitlines()[-1])
  assert printed["decode"]["method"] == "beam" and printed["decode"]["beam_size"] == 3
  with open(os.path.join(workdir, "eval_val_beam8.json")) as f:
    eight = json.load(f)
  assert eight["captions"] == one["captions"]
  assert ("meteor" in eight["metrics"]) == (shutil.which("java") is not None)


def test_unknown_split_is_named(tiny_run):
  with pytest.raises(ValueError, match="--split='dev'.*'test'"):
    evaluate.evaluate(tiny_run[0], "dev", {}, meteor=False)
