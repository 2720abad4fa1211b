"""Two processes joined over 127.0.0.1 train as one: the single-process numbers, one set of
files, and a checkpoint that restores in one process."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from capflax import inference
from tests.conftest import REPO


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_match_one_process_and_their_checkpoint_restores(tiny_run, tmp_path):
  workdir, single = tiny_run
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)  # One CPU device per process: two in all.
  procs = [subprocess.Popen(
      [sys.executable, "-m", "capflax.main", "--config=configs/demo.py:tiny",
       f"--workdir={tmp_path}", f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
       f"--process_id={i}"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]
  outs = [p.communicate(timeout=400) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  assert "Joined 2 processes as process 1" in outs[1][1]
  assert "test samples" in outs[0][0] and "test samples" not in outs[1][0]  # Printed once.
  assert "on 2 device(s)" in outs[0][1]

  with open(tmp_path / "results.json") as f:
    joint = json.load(f)
  assert joint["train_loss"] == pytest.approx(single["train_loss"], abs=1e-5)
  for split in ("val", "test"):
    for key, value in single["eval"][split].items():
      assert joint["eval"][split][key] == pytest.approx(value, abs=1e-5), (split, key)
  with open(tmp_path / "run.json") as f:
    assert json.load(f)["devices"] | {"kind": None} == {"platform": "cpu", "kind": None,
                                                        "count": 2, "processes": 2}

  restored = inference.load(str(tmp_path))  # This test process: one process, one device.
  reference = inference.load(workdir)
  assert restored.step == reference.step == 6
  # Adam divides by the gradient's root mean square: for parameters whose gradients are
  # near zero it turns last-bit differences of the all-reduce into ~1e-5 changes (the
  # learning rate is 1e-3); everything else agrees far closer.
  for a, b in zip(jax.tree.leaves(restored.variables), jax.tree.leaves(reference.variables)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4)


def test_coordinator_flags_go_together(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "capflax.main", "--config=configs/demo.py:tiny",
       f"--workdir={tmp_path}", "--coordinator_address=127.0.0.1:1234"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert out.returncode == 1 and "Traceback" not in out.stderr
  assert out.stderr.strip().splitlines()[-1] == (
      "capflax: --coordinator_address, --num_processes and --process_id go together; give all "
      "three or none.")
