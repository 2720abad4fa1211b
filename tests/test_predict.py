"""`capflax.predict` on the shared tiny run: files and folders, bad files, n-best, maps."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

from capflax import attention_maps
from tests.conftest import REPO


def predict(workdir, *args):
  return subprocess.run([sys.executable, "-m", "capflax.predict", f"--workdir={workdir}", *args],
                        cwd=REPO, capture_output=True, text=True, timeout=300)


def test_captions_files_and_folders_and_reports_bad_files(tiny_run, tmp_path):
  workdir, _ = tiny_run
  with open(os.path.join(workdir, "captions_test.json")) as f:
    trained = json.load(f)  # What training's evaluation wrote for these images.
  names = sorted(trained)[:3]
  images = os.path.join(workdir, "synthetic_data", "Images")
  folder = tmp_path / "folder"
  folder.mkdir()
  for name in names[1:]:
    shutil.copy(os.path.join(images, name), folder / name)
  (folder / "notes.txt").write_text("not an image")  # Skipped: not an image extension.
  broken = tmp_path / "broken.jpg"
  broken.write_bytes(b"this is not a jpeg")
  bomb = tmp_path / "bomb.png"
  Image.new("L", (2000, 1000)).save(bomb)  # 2 Mpx, over the limit below.
  out = predict(workdir, "--max_pixels=1000000", os.path.join(images, names[0]), str(broken),
                str(folder), str(bomb))
  assert out.returncode == 1, out.stderr[-3000:]
  errors = [line for line in out.stderr.splitlines() if "cannot caption" in line]
  assert len(errors) == 2
  assert errors[0].startswith(f"{broken}: cannot caption: ")
  assert errors[1] == f"{bomb}: cannot caption: 2000x1000 pixels exceeds --max_pixels=1000000"
  lines = [line.split("\t") for line in out.stdout.strip().splitlines()]
  assert [os.path.basename(p) for p, _ in lines] == names
  assert [c for _, c in lines] == [trained[n] for n in names]


def test_json_n_best_and_attention_maps(tiny_run, tmp_path):
  """Two photos of one file name in two folders get a map each; captions cut at --max_len
  without an EOS still get theirs (one panel per word, no <eos> panel)."""
  workdir, _ = tiny_run
  images = os.path.join(workdir, "synthetic_data", "Images")
  first, second = sorted(os.listdir(images))[:2]
  for folder, name in (("a", first), ("b", second)):
    os.makedirs(tmp_path / folder)
    shutil.copy(os.path.join(images, name), tmp_path / folder / "photo.jpg")
  paths = [str(tmp_path / "a" / "photo.jpg"), str(tmp_path / "b" / "photo.jpg")]
  maps = tmp_path / "maps"
  max_len = 3
  out = predict(workdir, "--json", "--beam_size=3", "--num_return=2", f"--attention_dir={maps}",
                f"--max_len={max_len}", *paths)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "using the checkpoint of step 6, the newest complete one" in out.stderr
  results = json.loads(out.stdout)
  assert [r["path"] for r in results] == paths
  assert all(len(r["captions"]) == 2 and r["captions"][0] for r in results)
  assert sorted(os.listdir(maps)) == ["a__photo.png", "b__photo.png"]
  for r, name in zip(results, ["a__photo.png", "b__photo.png"]):
    sheet = Image.open(maps / name)
    words = len(r["captions"][0].split())
    panels = words + (words < max_len)  # Each word, then <eos> if it came within max_len.
    assert sheet.width == attention_maps.PANEL * min(panels, 5)
    assert sheet.height == (attention_maps.PANEL + attention_maps.LABEL) * -(-panels // 5)
    assert np.asarray(sheet).std() > 10  # A picture, not a blank sheet.
