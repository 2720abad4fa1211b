"""scripts/fetch_weights.sh: --help, the exact commands of a dry run, unknown names."""

import os
import shlex
import subprocess

import pytest

from capflax.models import weights

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(*args, **env):
  return subprocess.run(["bash", "scripts/fetch_weights.sh", *args], cwd=REPO, text=True,
                        capture_output=True, env=os.environ | env, timeout=60, check=False)


def test_help_lists_every_checkpoint():
  out = _script("--help")
  assert out.returncode == 0 and out.stdout.startswith("Usage: ")
  listed = [line.strip() for line in out.stdout.split("Names:\n", 1)[1].splitlines()]
  assert listed == list(weights.WEIGHTS)


@pytest.mark.parametrize("name,url", [
    ("siglip2_so400m14_384",
     "https://storage.googleapis.com/big_vision/siglip2/siglip2_so400m14_384.npz"),
    ("siglip_b16_224",
     "https://storage.googleapis.com/big_vision/siglip/webli_en_b16_224_63724782.npz"),
    ("clip_l14_336",
     "https://huggingface.co/openai/clip-vit-large-patch14-336/resolve/main/model.safetensors"),
])
def test_dry_run_prints_the_download(tmp_path, name, url):
  out = _script(name, str(tmp_path / "w d"), DRY_RUN="1")
  assert out.returncode == 0, out.stderr
  file = weights.WEIGHTS[name].file
  part = str(tmp_path / "w d" / f"{file}.part")
  assert [shlex.split(line) for line in out.stdout.splitlines()] == [
      ["mkdir", "-p", str(tmp_path / "w d")],
      ["curl", "--location", "--fail", "--continue-at", "-", "--progress-bar", "--output", part,
       url],
      ["mv", part, str(tmp_path / "w d" / file)]]
  assert out.stderr.strip() == f"--config.model.encoder.init_from={tmp_path / 'w d' / file}"
  assert not (tmp_path / "w d").exists()


def test_unknown_name_and_missing_folder_fail_in_one_line(tmp_path):
  out = _script("siglip_b99", str(tmp_path))
  assert out.returncode == 2 and out.stderr.strip().splitlines() == [
      "unknown checkpoint 'siglip_b99'; `scripts/fetch_weights.sh --help` lists the names."]
  assert _script("clip_b16").returncode == 2
