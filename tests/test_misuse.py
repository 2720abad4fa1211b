"""Misuse, as a user meets it: each command run as a subprocess, its exit status and the
exact one line it prints on stderr; never a traceback, never the help text, nothing made
or moved that should not be.

Every case starts at once (the commands mostly wait on their imports), then each is
checked; a case is (name, argv, expected status, expected last stderr line).
"""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from capflax import workdir_lock
from tests.conftest import REPO


def _start(*argv, cwd=REPO):
  return subprocess.Popen([sys.executable, "-m", *argv], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _check(proc, status: int, last_line: str):
  out, err = proc.communicate(timeout=600)
  assert "Traceback" not in err, err[-3000:]
  assert "--helpfull" not in err and "USAGE" not in err, err[-3000:]  # No help text.
  lines = [line for line in err.splitlines() if line.strip()]
  assert lines and lines[-1] == last_line, err[-3000:]
  assert proc.returncode == status, err[-3000:]
  return out


@pytest.fixture(scope="module")
def copied_run(tiny_run, tmp_path_factory):
  """A copy of the finished tiny run, to resume and lock without touching the shared one."""
  workdir = str(tmp_path_factory.mktemp("misuse") / "run")
  shutil.copytree(tiny_run[0], workdir)
  return workdir


def test_every_command_ends_a_user_error_with_one_line(copied_run, tmp_path):
  fresh = tmp_path / "never_made"
  as_file = tmp_path / "a_file"
  as_file.write_text("")
  bad_record = tmp_path / "run.json"
  with open(os.path.join(copied_run, "config.json")) as f:
    config = json.load(f)
  config["train"]["batch_size"] = "8"
  bad_record.write_text(json.dumps({"config": config}))
  no_checkpoint = tmp_path / "no_checkpoint"
  no_checkpoint.mkdir()
  for f in ("config.json", "vocab.json"):
    shutil.copy(os.path.join(copied_run, f), no_checkpoint / f)
  empty = tmp_path / "empty_folder"
  empty.mkdir()
  tiny = ["capflax.main", "--config=configs/demo.py:tiny"]
  cases = [
      (tiny + [f"--workdir={fresh}", "--config.trian.batch_size=8"], 1,
       "capflax: --config.trian.batch_size=8: unknown config key 'trian'; did you mean "
       "\"train\" instead of \"trian\"?"),
      (["capflax.main", "--config=configs/nope.py", f"--workdir={fresh}"], 1,
       "capflax: --config=configs/nope.py: no such config file."),
      (tiny + [f"--workdir={fresh}", "--config.train.batch_size=-8"], 1,
       "capflax: config.train.batch_size=-8: must be >= 1."),
      (tiny + [f"--workdir={fresh}", "--config.train.checkpoint_every=0"], 1,
       "capflax: config.train.checkpoint_every=0: must be >= 1."),
      (tiny + [f"--workdir={fresh}", "--config.model.encoder.name=vitt"], 1,
       "capflax: config.model.encoder.name='vitt': unknown; allowed: 'vit', 'resnet', 'bit', "
       "'siglip', 'clip', 'cnn'."),
      (tiny + [f"--workdir={fresh}", "--config.decode.method=beem"], 1,
       "capflax: config.decode.method='beem': unknown; allowed: 'greedy', 'beam', 'sample'."),
      (tiny + [f"--workdir={as_file}"], 1,
       f"capflax: --workdir={as_file} is a file, not a folder; give a folder."),
      (["capflax.main", "--config=configs/vit_b16.py", f"--workdir={fresh}"], 1,
       "capflax: config.model.encoder.init_from is empty, but this config fine-tunes a "
       "pretrained encoder: pass --config.model.encoder.init_from=PATH (see "
       "docs/encoders.md), or --config.model.encoder.pretrained=False to train it from scratch."),
      (["capflax.main", f"--config=configs/from_record.py:{bad_record}", f"--workdir={fresh}"],
       1, f"capflax: --config=configs/from_record.py: {bad_record}: config.train.batch_size="
       "'8': must be an int."),
      (["capflax.evaluate", f"--workdir={copied_run}", "--batch_size=-4"], 1,
       "capflax.evaluate: flag --batch_size=-4: -4 is not a positive integer"),
      (["capflax.predict", f"--workdir={no_checkpoint}", str(empty)], 1,
       f"capflax.predict: {empty}: no image files in this folder (read one level deep; "
       "extensions .jpg, .jpeg, .png, .bmp, .gif, .webp, .tif, .tiff)."),
      (["capflax.predict", f"--workdir={no_checkpoint}", os.path.join(
          copied_run, "synthetic_data", "Images", sorted(os.listdir(os.path.join(
              copied_run, "synthetic_data", "Images")))[0])], 1,
       f"capflax.predict: {no_checkpoint}/checkpoints: no checkpoints (is {no_checkpoint} a "
       "capflax workdir that has saved one?)."),
      (["capflax.report"], 1, "capflax.report: Name one or more folders holding runs: "
       "python -m capflax.report DIR [DIR ...] [--out=OUT]."),
      (["capflax.data.check", f"--data_dir={empty}", "--min_count=0"], 1,
       "capflax.data.check: flag --min_count=0: 0 is not a positive integer"),
  ]
  # SCST settings, and starting from another run (config.init_from_workdir).
  other_vocab = tmp_path / "other_vocab"
  shutil.copytree(copied_run, other_vocab)
  with open(other_vocab / "vocab.json") as f:
    tokens = json.load(f)["tokens"]
  swapped = tokens[:4] + [tokens[5], tokens[4]] + tokens[6:]
  with open(other_vocab / "vocab.json", "w") as f:
    json.dump({"tokens": swapped}, f)
  scst = tiny + [f"--workdir={fresh}", "--config.train.objective=scst"]
  cases += [
      (tiny + [f"--workdir={fresh}", "--config.train.objective=scts"], 1,
       "capflax: config.train.objective='scts': unknown; allowed: 'xe', 'scst'."),
      (scst + ["--config.scst.baseline=greedyy"], 1,
       "capflax: config.scst.baseline='greedyy': unknown; allowed: 'mean', 'greedy'."),
      (scst + ["--config.scst.num_samples=1"], 1,
       "capflax: config.scst.num_samples=1: the 'mean' baseline (config.scst.baseline) "
       "averages the image's other samples, so it needs >= 2."),
      (scst, 1, "capflax: config.init_from_workdir is empty, but train.objective='scst' "
       "fine-tunes a trained captioner on its own samples: pass --config.init_from_workdir=DIR, "
       "a finished cross-entropy run's workdir."),
      (scst + ["--config.scst.bleu4_weight=-1"], 1,
       "capflax: config.scst.bleu4_weight=-1.0: must be >= 0."),
      (scst + ["--config.train.label_smoothing=0.1"], 1,
       "capflax: config.train.label_smoothing=0.1 is a setting of train.objective='xe', but "
       "config.train.objective='scst'."),
      (tiny + [f"--workdir={fresh}", "--config.scst.num_samples=3"], 1,
       "capflax: config.scst.num_samples=3 is a setting of train.objective='scst', but "
       "config.train.objective='xe'."),
      (scst + [f"--config.init_from_workdir={empty}"], 1,
       f"capflax: config.init_from_workdir={empty}: no config.json or vocab.json or "
       "checkpoints there; give the workdir of a run that has saved a checkpoint."),
      (tiny + [f"--workdir={tmp_path / 'scst_vocab'}", "--config.train.objective=scst",
               f"--config.init_from_workdir={other_vocab}"], 1,
       f"capflax: config.init_from_workdir={other_vocab}: its vocab.json ({len(tokens)} tokens) "
       f"differs from this run's ({len(tokens)} tokens; first at id 4: {tokens[5]!r} there, "
       f"{tokens[4]!r} here): train on the same data with the same data.min_count."),
  ]
  # Resumes that cannot continue the saved run, and a workdir another training holds; each
  # on its own copy (a training locks its workdir while it compares).
  changed_model, more_steps, held = (str(tmp_path / n) for n in ("model", "steps", "held"))
  for workdir in (changed_model, more_steps, held):
    shutil.copytree(copied_run, workdir)
  saved = {w: sorted(os.listdir(os.path.join(w, "checkpoints")))
           for w in (changed_model, more_steps)}
  cases += [
      (tiny + [f"--workdir={changed_model}", "--config.model.decoder.width=32",
               "--config.data.min_count=3"], 1,
       f"capflax: {changed_model} holds a run with another config (data.min_count 5 -> 3, "
       "model.decoder.width 16 -> 32): these shape the saved state or its data, so it cannot "
       "resume with them; to start fresh, train in another --workdir (the run there stays as "
       "it is)."),
      (tiny + [f"--workdir={more_steps}", "--config.train.num_steps=8"], 1,
       f"capflax: {more_steps} holds a run with another config (train.num_steps 6 -> 8); rerun "
       "with --accept_changes to resume with the new values, or train in another --workdir to "
       "start fresh."),
  ]
  with workdir_lock.hold(held):
    with open(os.path.join(held, workdir_lock.LOCK)) as f:
      since = json.load(f)["since"]
    cases.append((tiny + [f"--workdir={held}"], 1,
                  f"capflax: {held} is in use by another training (pid {os.getpid()} on host "
                  f"{socket.gethostname()}, started {since}); wait for it to end, or train in "
                  f"another --workdir."))
    procs = [_start(*argv) for argv, _, _ in cases]
    for proc, (argv, status, line) in zip(procs, cases):
      _check(proc, status, line)
  assert not fresh.exists()  # No command above made its workdir.
  assert not (no_checkpoint / "checkpoints").exists()  # predict made no checkpoints/.
  for workdir, steps in saved.items():  # Refused resumes moved nothing.
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == steps
    assert not os.path.exists(os.path.join(workdir, "checkpoints_unreadable"))
