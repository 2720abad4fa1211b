"""End to end: train_and_evaluate on freshly generated data; resume after kill -9 and
SIGTERM, NaN stops, profiling, and 8 devices."""

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from capflax import curve, losses, train
from configs import demo
from tests.conftest import REPO

METRICS = {"bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider_d", "num_images"}


@pytest.fixture(scope="module")
def finished(tiny_run):
  return tiny_run


def test_results_json(finished):
  workdir, results = finished
  with open(os.path.join(workdir, "results.json")) as f:
    on_disk = json.load(f)
  assert on_disk["step"] == 6 and np.isfinite(on_disk["train_loss"])
  assert set(on_disk["eval"]) == {"val", "test"}
  for split in ("val", "test"):
    scores = on_disk["eval"][split]
    assert METRICS <= set(scores)
    assert all(0.0 <= scores[k] <= 1.0 for k in ("bleu1", "bleu4", "rouge_l"))
    with open(os.path.join(workdir, f"captions_{split}.json")) as f:
      assert len(json.load(f)) == scores["num_images"] > 0
  assert on_disk["decode"] == {
      "method": "greedy", "max_len": 13, "beam_size": 4, "alpha": 0.6, "min_len": 1,
      "no_repeat_ngram_size": 0, "ban_unk": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
  assert on_disk["eval"] == results["eval"]
  assert set(on_disk["time_s"]) == {"data", "compile", "train", "evaluation"}


def test_scene_scores_in_results_tensorboard_and_per_image(finished):
  """The built-in data carries scenes.json: every split is scored against it, image by image."""
  import glob
  import tensorflow as tf
  from capflax.data import scene_file
  from capflax.metrics import scene
  workdir, results = finished
  truth = scene_file.read(os.path.join(workdir, "synthetic_data"))
  for split in ("val", "test"):
    with open(os.path.join(workdir, f"captions_{split}.json")) as f:
      captions = json.load(f)
    with open(os.path.join(workdir, f"scene_{split}.json")) as f:
      per_image = json.load(f)
    expected, expected_images = scene.score_split(captions, truth)
    assert results["eval"][split]["scene"] == expected
    assert sorted(per_image) == sorted(captions) and per_image == json.loads(
        json.dumps(expected_images))
  tags = {value.tag for path in glob.glob(os.path.join(workdir, "events.out.tfevents*"))
          for event in tf.compat.v1.train.summary_iterator(path) for value in event.summary.value}
  for split in ("val", "test"):
    assert {f"{split}/scene/shape_precision", f"{split}/scene/object_recall",
            f"{split}/scene/count_accuracy"} <= tags


def test_run_json_holds_the_training_curve(finished):
  """configs/demo.py:tiny: 6 steps of 8, curve_points=3 (a loss-only point every 2 steps),
  a validation at step 4, the final evaluation at 6."""
  workdir, results = finished
  with open(os.path.join(workdir, "run.json")) as f:
    record = json.load(f)
  points = record["curve"]
  assert [p["step"] for p in points] == [2, 4, 6]
  for p in points:
    assert p["examples"] == 8 * p["step"]
    assert p["flops"] == pytest.approx(record["flops"]["per_example"] * p["examples"])
  tokens = [p["tokens"] for p in points]
  assert 0 < tokens[0] < tokens[1] < tokens[2] == record["seen"]["tokens"]
  assert set(points[0]["val"]) == {"loss"}
  assert METRICS | {"loss"} <= set(points[1]["val"])
  assert points[2]["val"] == results["eval"]["val"]
  with open(os.path.join(workdir, "curve.json")) as f:
    assert json.load(f) == points


def test_workdir_holds_vocab_checkpoints_and_tensorboard_events(finished):
  workdir, _ = finished
  files = os.listdir(workdir)
  assert "vocab.json" in files and any(f.startswith("events.out.tfevents") for f in files)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4", "6"]


def test_resume_from_a_mid_run_checkpoint_matches_the_uninterrupted_run(finished, tmp_path):
  workdir, results = finished
  resumed = str(tmp_path / "resumed")
  shutil.copytree(workdir, resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", "6"))
  os.remove(os.path.join(resumed, "results.json"))
  again = train.train_and_evaluate(demo.get_config("tiny"), resumed)
  assert again["step"] == 6
  assert again["train_loss"] == results["train_loss"]
  assert again["eval"] == results["eval"]
  assert curve.load(resumed) == curve.load(workdir)  # Step 6's point measured again.


def test_rerun_of_a_finished_run_only_evaluates(finished):
  workdir, results = finished
  again = train.train_and_evaluate(demo.get_config("tiny"), workdir)
  assert again["step"] == 6 and again["eval"] == results["eval"]
  assert again["train_loss"] == results["train_loss"]


def test_base_config_without_data_says_where_to_get_it(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "capflax.main", "--config=configs/base.py", f"--workdir={tmp_path}"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert out.returncode == 1
  assert "Traceback" not in out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith(
      "capflax: config.data.dir is not set. Download Flickr8k")
  assert "--config.data.dir=DIR" in out.stderr


def test_command_line_on_eight_devices(finished, tmp_path):
  """`python -m capflax.main` unchanged on 8 forced CPU devices: same losses as 1 device."""
  workdir, results = finished
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
  out = subprocess.run(
      [sys.executable, "-m", "capflax.main", "--config=configs/demo.py:tiny",
       f"--workdir={tmp_path}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "on 8 device(s)" in out.stderr
  assert "test samples" in out.stdout
  with open(tmp_path / "results.json") as f:
    sharded = json.load(f)
  assert sharded["train_loss"] == pytest.approx(results["train_loss"], abs=1e-5)


def test_workdir_describes_its_run(finished):
  from capflax import run_files
  from capflax.errors import WorkdirError
  workdir, _ = finished
  config = run_files.load_config(workdir)
  assert config.to_dict() == json.loads(demo.get_config("tiny").to_json())
  with pytest.raises(WorkdirError, match="not-a-workdir.*capflax workdir"):
    run_files.load_config(os.path.join(workdir, "not-a-workdir"))


def test_tensorboard_holds_sample_images_and_captions(finished):
  import glob
  import tensorflow as tf
  workdir, _ = finished
  tags = {}
  for path in glob.glob(os.path.join(workdir, "events.out.tfevents*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.setdefault(value.tag, []).append(value)
  for split in ("val", "test"):  # val: the periodic validation; test: the final evaluation.
    assert f"{split}/sample_images" in tags
    text = tf.make_ndarray(tags[f"{split}/sample_captions"][-1].tensor).item().decode()
    assert text.startswith("**0. ") and text.count("\n- ") == 5  # One sample, five references.


# A longer tiny run without evaluations: 200 steps, a checkpoint every 50.
LONG = {"train.num_steps": 200, "train.checkpoint_every": 50, "train.log_every": 5,
        "train.eval_every": 1000, "train.keep_checkpoints": 10, "eval.splits": ()}


def _config(overrides: dict):
  config = demo.get_config("tiny")
  config.update_from_flattened_dict(overrides)
  return config


def _final_params(workdir):
  from capflax import inference
  run = inference.load(workdir)
  return run.step, jax.tree.map(np.asarray, run.variables["params"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("uninterrupted"))
  train.train_and_evaluate(_config(LONG), workdir)
  return _final_params(workdir)


def _run_until(workdir, after_step: int, stop):
  """Starts the CLI on `workdir`; once it logs a step past `after_step` and the checkpoint
  of `after_step` is complete, calls stop(proc)."""
  flags = [f"--config.{k}={v}" for k, v in LONG.items()]
  proc = subprocess.Popen([sys.executable, "-m", "capflax.main", "--config=configs/demo.py:tiny",
                           f"--workdir={workdir}", *flags], cwd=REPO, stderr=subprocess.PIPE,
                          stdout=subprocess.DEVNULL, text=True)
  log = []
  for line in proc.stderr:
    log.append(line)
    logged = re.search(r"\] \[(\d+)\] train/", line)
    if (logged and int(logged.group(1)) > after_step
        and (workdir / "checkpoints" / str(after_step)).is_dir()):
      stop(proc)
      break
  log.extend(proc.stderr)
  return proc.wait(timeout=120), "".join(log)


def _assert_bit_identical(a, b):
  (step_a, params_a), (step_b, params_b) = a, b
  assert step_a == step_b == 200
  for x, y in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
    np.testing.assert_array_equal(x, y)


def test_killed_run_resumes_bit_exactly(uninterrupted, tmp_path):
  """kill -9 between checkpoints 50 and 100; the rerun's parameters equal an uninterrupted
  run's bit for bit (same data order, same dropout, same optimizer state)."""
  rc, log = _run_until(tmp_path, 50, lambda p: p.send_signal(signal.SIGKILL))
  assert rc == -signal.SIGKILL
  # Killed mid-stretch; on a busy machine perhaps while step 100 was being written (orbax's
  # temporary folder, which the rerun removes).
  assert [d for d in os.listdir(tmp_path / "checkpoints") if d.isdigit()] == ["50"]
  again = train.train_and_evaluate(_config(LONG), str(tmp_path))
  assert again["step"] == 200
  _assert_bit_identical(_final_params(str(tmp_path)), uninterrupted)


def test_sigterm_saves_exits_zero_and_the_rerun_continues(uninterrupted, tmp_path, caplog):
  rc, log = _run_until(tmp_path, 50, lambda p: p.send_signal(signal.SIGTERM))
  assert rc == 0, log[-3000:]
  stopped = int(re.search(r"Preempted at step (\d+): checkpoint saved", log).group(1))
  assert 55 <= stopped < 200 and str(stopped) in os.listdir(tmp_path / "checkpoints")
  assert not (tmp_path / "results.json").exists()
  with caplog.at_level(logging.INFO):
    train.train_and_evaluate(_config(LONG), str(tmp_path))
  assert any(f"Starting at step {stopped} of 200" in r.getMessage() for r in caplog.records)
  _assert_bit_identical(_final_params(str(tmp_path)), uninterrupted)


def test_ctrl_c_saves_like_sigterm_and_exits_130(tmp_path):
  rc, log = _run_until(tmp_path, 50, lambda p: p.send_signal(signal.SIGINT))
  assert rc == 130, log[-3000:]
  assert "Traceback" not in log and "KeyboardInterrupt" not in log
  stopped = int(re.search(r"Preempted at step (\d+): checkpoint saved", log).group(1))
  assert str(stopped) in os.listdir(tmp_path / "checkpoints")
  assert log.strip().splitlines()[-1] == (
      f"capflax: stopped by Ctrl-C at step {stopped}; checkpoint saved in {tmp_path}; rerun the "
      "same command to resume.")


def test_nan_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  workdir = str(tmp_path)
  first = {"train.num_steps": 4, "eval.splits": ()}
  train.train_and_evaluate(_config(first), workdir)
  good = _final_params(workdir)
  real = losses.token_cross_entropy
  monkeypatch.setattr(losses, "token_cross_entropy",
                      lambda *a, **k: (real(*a, **k)[0] * jnp.nan, real(*a, **k)[1]))
  with pytest.raises(train.NonFiniteError, match=r"non-finite loss at step 5 \(loss nan"):
    train.train_and_evaluate(_config(first | {"train.num_steps": 6}), workdir, accept_changes=True)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "4"]
  after = _final_params(workdir)
  assert after[0] == good[0] == 4
  for x, y in zip(jax.tree.leaves(after[1]), jax.tree.leaves(good[1])):
    np.testing.assert_array_equal(x, y)


def test_profiler_trace_covers_the_chosen_steps(tmp_path):
  train.train_and_evaluate(_config({"train.num_steps": 4, "eval.splits": (),
                                    "train.profile_steps": 2, "train.profile_first_step": 1}),
                           str(tmp_path))
  traces = list((tmp_path / "plugins" / "profile").glob("*/*.xplane.pb"))
  assert len(traces) == 1 and traces[0].stat().st_size > 0
