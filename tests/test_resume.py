"""resume.check and the workdir lock, in process: which changes refuse, which need the flag."""

import json
import os
import signal
import subprocess
import sys

import pytest

from capflax import resume, run_files, workdir_lock
from capflax.errors import WorkdirError
from configs import demo
from tests.conftest import REPO


def _saved(tmp_path):
  run_files.save_config(tmp_path, demo.get_config("tiny"))
  return str(tmp_path)


def test_same_config_or_free_fields_resume(tmp_path):
  workdir = _saved(tmp_path)
  assert resume.check(workdir, demo.get_config("tiny")) is False
  config = demo.get_config("tiny")
  config.train.log_every = 1
  assert resume.check(workdir, config) is True  # Saved again, nothing asked.
  assert resume.check(str(tmp_path / "fresh"), config) is True


@pytest.mark.parametrize("key, value", [
    ("model.decoder.width", 32), ("data.min_count", 3), ("data.dir", "/elsewhere"),
    ("optim.ema_decay", 0.9), ("seed", 1), ("data.split_fractions", {"train": 0.5, "val": 0.5}),
    ("train.batch_size", 16), ("train.objective", "scst"), ("scst.num_samples", 3),
    ("scst.append_eos", False), ("init_from_workdir", "/runs/w1")])
def test_a_change_to_the_state_or_data_never_resumes(tmp_path, key, value):
  workdir = _saved(tmp_path)
  config = demo.get_config("tiny")
  config.update_from_flattened_dict({key: value}) if key != "data.split_fractions" else (
      config.data.__setattr__("split_fractions", value))
  with pytest.raises(WorkdirError, match=rf"holds a run with another config \({key}.*cannot "
                     r"resume with them; to start fresh, train in another --workdir"):
    resume.check(workdir, config, accept_changes=True)


def test_num_steps_and_eval_settings_need_the_flag(tmp_path):
  workdir = _saved(tmp_path)
  config = demo.get_config("tiny")
  config.train.num_steps = 12
  config.decode.method = "beam"
  with pytest.raises(WorkdirError) as error:
    resume.check(workdir, config)
  assert str(error.value) == (
      f"{workdir} holds a run with another config (decode.method 'greedy' -> 'beam', "
      "train.num_steps 6 -> 12); rerun with --accept_changes to resume with the new values, "
      "or train in another --workdir to start fresh.")
  assert resume.check(workdir, config, accept_changes=True) is True


def test_a_damaged_config_json_is_named(tmp_path):
  (tmp_path / "config.json").write_text('{"data": ')
  with pytest.raises(WorkdirError, match=r"config.json: unreadable"):
    resume.check(str(tmp_path), demo.get_config("tiny"))


def test_one_holder_at_a_time_and_a_dead_holder_is_taken_over(tmp_path):
  workdir = str(tmp_path)
  with workdir_lock.hold(workdir):
    with pytest.raises(WorkdirError, match=rf"in use by another training \(pid {os.getpid()} "):
      with workdir_lock.hold(workdir):
        pass
  # A holder killed with -9 leaves the file; the kernel dropped its flock, so it is taken.
  child = subprocess.Popen(
      [sys.executable, "-c", "import sys; from capflax import workdir_lock\n"
       f"with workdir_lock.hold({workdir!r}):\n  print('held', flush=True); sys.stdin.read()"],
      cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  assert child.stdout.readline() == "held\n"
  with pytest.raises(WorkdirError, match=rf"pid {child.pid} on host"):
    with workdir_lock.hold(workdir):
      pass
  child.send_signal(signal.SIGKILL)
  child.wait()
  assert json.loads(open(os.path.join(workdir, workdir_lock.LOCK)).read())["pid"] == child.pid
  with workdir_lock.hold(workdir):
    assert json.loads(open(os.path.join(workdir, workdir_lock.LOCK)).read())["pid"] == os.getpid()


def test_a_file_or_unwritable_workdir_is_one_line(tmp_path):
  (tmp_path / "f").write_text("")
  with pytest.raises(WorkdirError, match=r"is a file, not a folder"):
    workdir_lock.prepare(str(tmp_path / "f"))
  if os.geteuid() != 0:  # root writes anywhere
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(WorkdirError, match=r"not writable"):
      workdir_lock.prepare(str(tmp_path / "ro"))
