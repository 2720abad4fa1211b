import subprocess
import sys

from capflax.data import check
from tests.conftest import REPO
from tests.data import miniature

FRACTIONS = {"train": 0.75, "val": 0.125, "test": 0.125}


def test_clean_folder_report(tmp_path, flickr8k_text, capsys):
  chosen = miniature.pick(flickr8k_text, per_split=2, unlisted=1)
  miniature.kaggle(tmp_path, flickr8k_text, list(chosen))
  assert check.report(str(tmp_path), "", 1, FRACTIONS) == 0
  real = miniature.real_captions(flickr8k_text)
  train_words = {w for n, s in chosen.items() if s == "train" for c in real[n]
                 for w in check.dataset.Vocabulary.build([c], 1).itos[4:]}
  unlisted = [n for n, s in chosen.items() if s is None]
  assert capsys.readouterr().out.splitlines() == [
      f"layout: kaggle ({tmp_path})",
      "split: the official Flickr8k split (lists shipped in capflax/data/flickr8k_splits)",
      "train: 2 images, 10 captions",
      "val: 2 images, 10 captions",
      "test: 2 images, 10 captions",
      f"left out: 1 images in no split list (e.g. {unlisted[0]})",
      f"vocabulary: {len(train_words)} words at min count 1 (+4 special tokens)",
      "warnings: 0 (repeated captions: 0, outlier-length captions: 0)", "problems: 0"]


def test_dirty_folder_lists_every_problem_and_exits_1(tmp_path):
  names = [f"{k}.jpg" for k in range(40)]  # Enough that no hash split is empty.
  miniature.write_jpegs(tmp_path / "Images", names + ["b.jpg"])
  (tmp_path / "Images" / "b.jpg").write_bytes(b"\xff\xd8 broken")
  (tmp_path / "captions.txt").write_text(
      "image,caption\nb.jpg,a dog .\nc.jpg,a cow .\n0.jpg,\n"
      + "".join(f"{n},a cat .\n" for n in names))
  result = subprocess.run([sys.executable, "-m", "capflax.data.check",
                           f"--data_dir={tmp_path}", "--min_count=1"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1, result.stderr
  lines = result.stdout.splitlines()
  assert lines[0] == f"layout: kaggle ({tmp_path})"
  assert lines[lines.index("problems: 3") + 1:] == [
      f"  {tmp_path}/captions.txt:3: image c.jpg not found in {tmp_path}/Images.",
      f"  {tmp_path}/captions.txt:4: empty caption for 0.jpg.",
      f"  {tmp_path}/Images/b.jpg: " + check.dataset.images.check_file(
          str(tmp_path / "Images" / "b.jpg"))]


def test_missing_folder_is_one_problem(tmp_path, capsys):
  assert check.report(str(tmp_path / "none"), "", 5, FRACTIONS) == 1
  assert capsys.readouterr().out.startswith(f"problem: {tmp_path / 'none'}: no such folder")
