"""The launch scripts: syntax, --help, the exact commands of a dry run, and the shell that
`cloud_tpu.sh` runs on each worker, executed here against a stand-in for the Python process.

gcloud, srun and scontrol are never needed: a `gcloud` that fails loudly comes first on
PATH, and SLURM's `scontrol` is a two-line stand-in.
"""

import os
import re
import shlex
import signal
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["scripts/cloud_tpu.sh", "scripts/gpu_host.sh", "scripts/slurm_gpu.sbatch"]
with open(os.path.join(REPO, "requirements.txt")) as f:
  JAX = re.search(r"^jax==(\S+)$", f.read(), re.MULTILINE)[1]
LOC = ["--zone=us-west4-a", "--project=my-proj"]
SSH = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "capflax", *LOC]
RUNNING = 'kill -0 "$(cat ~/capflax/train.pid 2>/dev/null)" 2>/dev/null'


@pytest.fixture
def bin_dir(tmp_path):
  """PATH entries: a gcloud that must not be called, and SLURM's scontrol for one node list."""
  d = tmp_path / "bin"
  d.mkdir()
  (d / "gcloud").write_text("#!/bin/sh\necho 'gcloud must not run in a dry run' >&2\nexit 99\n")
  (d / "scontrol").write_text('#!/bin/sh\n[ "$*" = "show hostnames gpu[07-08]" ] || exit 1\n'
                              'printf "gpu07\\ngpu08\\n"\n')
  for f in d.iterdir():
    f.chmod(0o755)
  return d


def script(path, args, bin_dir, **env):
  base = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(bin_dir.parent)}
  return subprocess.run(["bash", path, *args], cwd=REPO, env=base | env, capture_output=True,
                        text=True, timeout=60, check=False)


def dry_run(path, args, bin_dir, **env):
  """The printed commands, each split back into its argument list as a shell would."""
  out = script(path, args, bin_dir, DRY_RUN="1", **env)
  assert out.returncode == 0, out.stderr
  return [shlex.split(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("path", SCRIPTS)
def test_syntax_and_help(path, bin_dir):
  subprocess.run(["bash", "-n", path], cwd=REPO, check=True)
  out = script(path, ["--help"], bin_dir)
  assert out.returncode == 0 and out.stdout.startswith("Usage: "), out.stderr


def test_help_lists_every_tpu_command(bin_dir):
  text = script("scripts/cloud_tpu.sh", ["--help"], bin_dir).stdout
  for command in ("create", "setup", "run", "status", "logs", "stop", "delete"):
    assert re.search(rf"^  {command} ", text, re.MULTILINE), command


SETUP = ("set -e; rm -rf ~/capflax/src; mkdir -p ~/capflax/src; tar -xzf ~/capflax-src.tar.gz "
         "-C ~/capflax/src; rm ~/capflax-src.tar.gz; python3 -m pip install --user --quiet uv; "
         "~/.local/bin/uv venv --allow-existing --python 3.11 ~/capflax/venv; ~/.local/bin/uv pip "
         "install --python ~/capflax/venv/bin/python -r ~/capflax/src/requirements.txt "
         f"'jax[tpu]=={JAX}'; mkdir -p ~/capflax/data; gcloud storage rsync --recursive "
         "gs://bkt/flickr8k ~/capflax/data")
RUN = (f'if {RUNNING}; then echo "$(hostname): already running" >&2; exit 1; fi; '
       "cd ~/capflax/src; nohup ~/capflax/venv/bin/python -m capflax.main "
       "--config=configs/base.py --workdir=gs://bkt/capflax/capflax "
       '--config.data.dir="$HOME/capflax/data" --config.mesh.fsdp=4 '
       "'--config.model.name=a b' >> ~/capflax/train.log 2>&1 < /dev/null & "
       "echo $! > ~/capflax/train.pid")
STATUS = (f"if {RUNNING}; then s=running; else s=stopped; fi; "
          'echo "$(hostname): $s; $(tail -n 1 ~/capflax/train.log 2>/dev/null)"')
STOP = (f'if {RUNNING}; then kill -TERM "$(cat ~/capflax/train.pid)"; '
        'echo "$(hostname): sent SIGTERM"; else echo "$(hostname): not running"; fi')
TPU_ENV = {"ZONE": "us-west4-a", "PROJECT": "my-proj", "BUCKET": "gs://bkt",
           "DATA_SRC": "gs://bkt/flickr8k"}


def test_tpu_dry_run_commands(bin_dir, tmp_path):
  commands = dry_run("scripts/cloud_tpu.sh",
                     ["create", "setup", "run", "status", "logs", "stop", "delete", "--",
                      "--config.mesh.fsdp=4", "--config.model.name=a b"],
                     bin_dir, TMPDIR=str(tmp_path), **TPU_ENV)
  archive = f"{tmp_path}/capflax-capflax.tar.gz"
  assert commands == [
      ["gcloud", "compute", "tpus", "tpu-vm", "create", "capflax", *LOC,
       "--accelerator-type=v5litepod-16", "--version=v2-alpha-tpuv5-lite"],
      ["tar", "-czf", archive, "-C", REPO, "--exclude=.git", "--exclude=.venv",
       "--exclude=__pycache__", "--exclude=.pytest_cache", "--exclude=.ruff_cache",
       "--exclude=./workdir*", "."],
      ["gcloud", "compute", "tpus", "tpu-vm", "scp", archive, "capflax:capflax-src.tar.gz", *LOC,
       "--worker=all"],
      ["rm", archive],
      [*SSH, "--worker=all", f"--command={SETUP}"],
      [*SSH, "--worker=all", f"--command={RUN}"],
      ["gcloud", "compute", "tpus", "tpu-vm", "describe", "capflax", *LOC,
       "--format=value(state,health,acceleratorType)"],
      [*SSH, "--worker=all", f"--command={STATUS}"],
      [*SSH, "--worker=0", "--command=tail -n 100 -F ~/capflax/train.log"],
      [*SSH, "--worker=all", f"--command={STOP}"],
      ["gcloud", "compute", "tpus", "tpu-vm", "delete", "capflax", *LOC, "--quiet"],
  ]
  for c in commands:  # Every script sent to the workers is valid shell.
    if c[-1].startswith("--command="):
      subprocess.run(["bash", "-n", "-c", c[-1][len("--command="):]], check=True)


def test_tpu_spot_dry_run_commands(bin_dir):
  commands = dry_run("scripts/cloud_tpu.sh", ["create", "delete"], bin_dir, SPOT="1",
                     TPU_NAME="f8k", ACCELERATOR_TYPE="v6e-16", ZONE="us-east5-b")
  qr = ["gcloud", "compute", "tpus", "queued-resources"]
  assert commands == [
      [*qr, "create", "f8k", "--zone=us-east5-b", "--node-id=f8k", "--accelerator-type=v6e-16",
       "--runtime-version=v2-alpha-tpuv6e", "--spot"],
      [*qr, "describe", "f8k", "--zone=us-east5-b", "--format=value(state.state)"],
      [*qr, "delete", "f8k", "--zone=us-east5-b", "--force", "--quiet"],
  ]


# Google's table of TPU software versions for JAX (cloud.google.com/tpu/docs/runtimes).
@pytest.mark.parametrize("accelerator, runtime", [
    ("v6e-8", "v2-alpha-tpuv6e"), ("v5p-16", "v2-alpha-tpuv5"),
    ("v5litepod-16", "v2-alpha-tpuv5-lite"), ("v4-32", "tpu-ubuntu2204-base"),
    ("v3-8", "tpu-ubuntu2204-base")])
def test_tpu_runtime_version_for_each_generation(bin_dir, accelerator, runtime):
  [create] = dry_run("scripts/cloud_tpu.sh", ["create"], bin_dir, ZONE="z",
                     ACCELERATOR_TYPE=accelerator)
  assert create[-1] == f"--version={runtime}"


@pytest.mark.parametrize("args, env, message", [
    (["create"], {}, "set ZONE"),
    (["launch"], {"ZONE": "z"}, "unknown command 'launch'"),
    (["run"], {"ZONE": "z"}, "set BUCKET"),
    (["run"], {"ZONE": "z", "WORKDIR": "/tmp/run"}, "WORKDIR=/tmp/run: use a gs:// path"),
    (["create"], {"ZONE": "z", "ACCELERATOR_TYPE": "v9x-8"}, "set RUNTIME_VERSION"),
])
def test_tpu_refuses_bad_settings(bin_dir, args, env, message):
  out = script("scripts/cloud_tpu.sh", args, bin_dir, DRY_RUN="1", **env)
  assert out.returncode != 0 and message in out.stderr and not out.stdout


def test_tpu_worker_scripts_start_refuse_report_and_stop_a_run(tmp_path):
  """RUN, STATUS and STOP run on a fake worker home: the stand-in for Python logs its
  arguments, and exits 0 on SIGTERM as capflax.main does after saving a checkpoint."""
  home = tmp_path / "home"
  (home / "capflax" / "src").mkdir(parents=True)
  (home / "capflax" / "venv" / "bin").mkdir(parents=True)
  python = home / "capflax" / "venv" / "bin" / "python"
  python.write_text('#!/bin/bash\ntrap \'echo "SIGTERM: checkpoint saved"; exit 0\' TERM\n'
                    'echo "argv: $*"\nwhile true; do sleep 0.05; done\n')
  python.chmod(0o755)

  def worker(command):
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30,
                          check=False, env={"HOME": str(home), "PATH": os.environ["PATH"]})

  def wait_for(condition):  # The stand-in starts, and exits, in its own time.
    for _ in range(200):
      if condition():
        return
      time.sleep(0.05)
    raise AssertionError("timed out")

  log = home / "capflax" / "train.log"
  assert worker(RUN).returncode == 0
  pid = int((home / "capflax" / "train.pid").read_text())
  try:
    wait_for(lambda: log.exists() and log.read_text())
    argv = ("-m capflax.main --config=configs/base.py --workdir=gs://bkt/capflax/capflax "
            f"--config.data.dir={home}/capflax/data --config.mesh.fsdp=4 --config.model.name=a b")
    assert log.read_text() == f"argv: {argv}\n"
    again = worker(RUN)
    assert again.returncode == 1 and "already running" in again.stderr
    assert worker(STATUS).stdout.endswith(f": running; argv: {argv}\n")
    assert worker(STOP).stdout.endswith(": sent SIGTERM\n")
    wait_for(lambda: "stopped" in worker(STATUS).stdout)
  finally:  # A failed assertion must not leave the stand-in running.
    if ": running;" in worker(STATUS).stdout:
      os.kill(pid, signal.SIGKILL)
  assert log.read_text() == f"argv: {argv}\nSIGTERM: checkpoint saved\n"
  assert worker(STATUS).stdout.endswith(": stopped; SIGTERM: checkpoint saved\n")
  assert worker(STOP).stdout.endswith(": not running\n")


def test_gpu_host_dry_run_commands(bin_dir):
  commands = dry_run("scripts/gpu_host.sh", ["setup", "run", "--", "--config.data.dir=/d f8k"],
                     bin_dir, WORKDIR="gs://bkt/run", VENV="/opt/venv")
  assert commands == [
      ["python3.11", "-m", "venv", "/opt/venv"],
      ["/opt/venv/bin/pip", "install", "-r", f"{REPO}/requirements.txt", f"jax[cuda12]=={JAX}"],
      ["/opt/venv/bin/python", "-m", "capflax.main", "--config=configs/base.py",
       "--workdir=gs://bkt/run", "--config.data.dir=/d f8k"],
  ]
  out = script("scripts/gpu_host.sh", ["run"], bin_dir, DRY_RUN="1")
  assert out.returncode != 0 and "set WORKDIR" in out.stderr


def test_slurm_dry_run_one_process_per_host(bin_dir):
  env = {"SLURM_JOB_ID": "1234", "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_NUM_NODES": "2",
         "SLURM_SUBMIT_DIR": REPO, "WORKDIR": "/shared/run"}
  [srun] = dry_run("scripts/slurm_gpu.sbatch", ["--config.data.dir=/shared/f8k"], bin_dir, **env)
  port = 1234 % 4096 + 61440  # The port range jax's own SLURM detection picks from.
  assert srun == [
      "srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "bash", "-c",
      (f"exec {REPO}/.venv/bin/python -m capflax.main --config=configs/base.py "
       f"--workdir=/shared/run --coordinator_address=gpu07:{port} --num_processes=2 "
       "--config.data.dir=/shared/f8k --process_id=$SLURM_PROCID")]
  # What each task runs: its own SLURM_PROCID becomes --process_id.
  echo = subprocess.run(["bash", "-c", srun[-1].replace("exec ", "exec echo ", 1)],
                        env={"SLURM_PROCID": "1", "PATH": os.environ["PATH"]},
                        capture_output=True, text=True, check=True)
  assert echo.stdout.split()[-1] == "--process_id=1"
  out = script("scripts/slurm_gpu.sbatch", [], bin_dir, DRY_RUN="1")
  assert out.returncode != 0 and "not inside a SLURM job" in out.stderr
