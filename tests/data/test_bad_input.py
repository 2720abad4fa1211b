import io
import json
import logging
import shutil

import numpy as np
import pytest
from PIL import Image

from capflax.data import dataset, images, pipeline, sources
from tests.data import miniature


def _folder(tmp_path, names=("a.jpg", "b.jpg", "c.jpg")):
  miniature.write_jpegs(tmp_path / "Images", names)
  lines = ["image,caption"] + [f"{n},a photo of {n[0]} ." for n in names]
  (tmp_path / "captions.txt").write_text("\n".join(lines) + "\n")
  return tmp_path


def test_missing_folder_and_files_are_named(tmp_path):
  with pytest.raises(sources.DataError, match="nope: no such folder .expected one of: Images/"):
    dataset.load(str(tmp_path / "nope"))
  with pytest.raises(sources.DataError, match="no known layout; expected Images/ \\+ captions"):
    dataset.load(str(tmp_path))
  (tmp_path / sources.ORIGINAL_TEXT).mkdir()
  with pytest.raises(sources.DataError, match=r"Flicker8k_Dataset: missing folder; the original"):
    dataset.load(str(tmp_path))
  (tmp_path / sources.ORIGINAL_IMAGES).mkdir()
  with pytest.raises(sources.DataError, match=r"Flickr8k.token.txt: missing file"):
    dataset.load(str(tmp_path))
  (tmp_path / "dataset_flickr8k.json").write_text('{"images": [{"filename": "a.jpg", '
                                                  '"split": "train", "sentences": []}]}')
  shutil.rmtree(tmp_path / sources.ORIGINAL_IMAGES)
  with pytest.raises(sources.DataError, match=r"no image folder next to dataset_flickr8k.json"):
    dataset.load(str(tmp_path))


def test_corrupt_truncated_and_odd_images(tmp_path):
  d = _folder(tmp_path, ["a.jpg", "b.jpg", "c.jpg", "d.png", "e.png", "f.jpg"])
  whole = (d / "Images" / "a.jpg").read_bytes()
  (d / "Images" / "b.jpg").write_bytes(whole[: len(whole) // 2])  # Truncated.
  (d / "Images" / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")  # Corrupt.
  rgba = np.zeros((20, 30, 4), np.uint8)
  rgba[..., 0], rgba[..., 3] = 200, 255
  Image.fromarray(rgba, "RGBA").save(d / "Images" / "d.png")  # Alpha: fine.
  Image.new("L", (30, 20), 90).save(d / "Images" / "e.png")  # One channel: fine.
  Image.new("L", (30, 20), 90).save(d / "Images" / "f.jpg")  # Grey JPEG: fine.
  loaded = dataset.load(str(d))
  assert len(loaded.problems) == 2
  assert loaded.problems[0].startswith(f"{d / 'Images' / 'b.jpg'}: corrupt or truncated image")
  assert loaded.problems[1].startswith(f"{d / 'Images' / 'c.jpg'}: corrupt or truncated image")
  good = sorted((r for s in loaded.assigned.splits.values() for r in s), key=lambda r: r.filename)
  assert [r.filename for r in good] == ["a.jpg", "d.png", "e.png", "f.jpg"]
  batch = next(iter(pipeline.eval_dataset(good, image_size=8, global_batch=4)))
  assert batch["image"].shape == (4, 8, 8, 3)
  np.testing.assert_allclose(batch["image"][1, 4, 4], [200, 0, 0], atol=2)  # RGBA -> RGB
  np.testing.assert_allclose(batch["image"][2, 4, 4], [90, 90, 90], atol=2)  # L -> RGB


def test_check_results_are_cached_until_the_file_changes(tmp_path, monkeypatch):
  d = _folder(tmp_path)
  records = sources.read_kaggle(str(d))
  calls = []
  check_file = images.check_file
  monkeypatch.setattr(images, "check_file", lambda p: calls.append(p) or check_file(p))
  assert images.check(records, cache_name=str(d)) == (records, [])
  assert len(calls) == 3
  images.check(records, cache_name=str(d))
  assert len(calls) == 3  # Nothing re-decoded.
  (d / "Images" / "b.jpg").write_bytes(b"garbage")
  good, problems = images.check(records, cache_name=str(d))
  assert calls[3:] == [str(d / "Images" / "b.jpg")]
  assert [r.filename for r in good] == ["a.jpg", "c.jpg"] and len(problems) == 1


def test_caption_problems_are_all_listed_with_file_and_line(tmp_path):
  d = _folder(tmp_path)
  (d / "captions.txt").write_bytes(
      b"image,caption\na.jpg,A dog .\nz.jpg,A ghost .\nb.jpg,  .  \nb.jpg,too,many\n"
      b"c.jpg,A caf\xe9 .\nc.jpg,fine\n")
  loaded = dataset.load(str(d))
  path = d / "captions.txt"
  assert loaded.problems == [
      f"{path}:3: image z.jpg not found in {d / 'Images'}.",
      f"{path}:4: empty caption for b.jpg.",
      f"{path}:5: expected 2 fields 'image,caption', got 3.",
      f"{path}:6: not UTF-8 (byte 0xe9 at column 12)."]
  with pytest.raises(sources.DataError) as e:
    dataset.apply_policy(loaded.problems, "error", str(d))
  assert str(e.value).splitlines()[0] == f"4 problem(s) in {d}:"
  assert [line.strip() for line in str(e.value).splitlines()[1:]] == loaded.problems


def test_original_layout_malformed_lines(tmp_path):
  miniature.write_jpegs(tmp_path / sources.ORIGINAL_IMAGES, ["a.jpg"])
  (tmp_path / sources.ORIGINAL_TEXT).mkdir()
  tokens = tmp_path / sources.ORIGINAL_TEXT / sources.ORIGINAL_TOKENS
  tokens.write_text("a.jpg#0\tA dog .\na.jpg A cat\na.jpg#x\tA cow .\n\na.jpg#1\t \n")
  read = sources.read(str(tmp_path))
  assert read.problems == [
      f"{tokens}:2: expected 'name.jpg#i<TAB>caption', got 'a.jpg A cat'.",
      f"{tokens}:3: expected 'name.jpg#i<TAB>caption', got 'a.jpg#x\\tA cow .'.",
      f"{tokens}:5: empty caption for a.jpg."]
  assert [r.captions for r in read.records] == [("A dog",)]


def test_skip_policy_logs_each_problem_and_the_count(tmp_path, caplog):
  d = _folder(tmp_path)
  (d / "Images" / "c.jpg").write_bytes(b"")
  loaded = dataset.load(str(d))
  with caplog.at_level(logging.WARNING):
    dataset.apply_policy(loaded.problems, "skip", str(d))
  assert f"Skipped: {d / 'Images' / 'c.jpg'}: corrupt or truncated image" in caplog.text
  assert f"Skipped 1 bad example(s) in {d}" in caplog.text
  with pytest.raises(sources.DataError, match="on_bad_example must be one of"):
    dataset.apply_policy([], "ignore", str(d))


def test_cmyk_jpeg_is_reported(tmp_path):
  buf = io.BytesIO()
  Image.new("CMYK", (16, 16), (0, 50, 100, 0)).save(buf, "JPEG")
  (tmp_path / "x.jpg").write_bytes(buf.getvalue())
  assert images.check_file(str(tmp_path / "x.jpg")).startswith("a CMYK JPEG")


def test_karpathy_json_entries_are_checked(tmp_path):
  miniature.write_jpegs(tmp_path / "Images", ["a.jpg", "b.jpg"])
  entries = [{"filename": "a.jpg", "split": "train", "sentences": [{"raw": "A dog ."}]},
             {"filename": "b.jpg", "sentences": [{"raw": "A cat ."}]},
             {"filename": "b.jpg", "split": "dev", "sentences": [{"raw": "A cat ."}]},
             {"filename": "z.jpg", "split": "test", "sentences": [{"raw": "A cow ."}]}]
  json_path = tmp_path / "dataset_flickr8k.json"
  json_path.write_text(json.dumps({"images": entries}))
  read = sources.read(str(tmp_path))
  assert read.problems == [
      f"{json_path}: images[1]: expected 'filename', 'split' and 'sentences[].raw' "
      "(KeyError('split')).",
      f"{json_path}: images[2]: unknown split 'dev' (expected one of "
      "['restval', 'test', 'train', 'val']).",
      f"{json_path}: images[3].sentences[0]: image z.jpg not found in {tmp_path / 'Images'}."]
  assert [(r.filename, r.captions) for r in read.records] == [("a.jpg", ("A dog",))]
  json_path.write_text("{not json")
  with pytest.raises(sources.DataError, match="dataset_flickr8k.json: not a Karpathy split file"):
    sources.read(str(tmp_path))


def test_config_policy_decides_before_training(tmp_path):
  from configs import demo
  names = [f"{k}.jpg" for k in range(30)]
  d = _folder(tmp_path / "data", names)
  (d / "Images" / "7.jpg").write_bytes(b"")
  config = demo.get_config("tiny")
  config.data.dir = str(d)
  with pytest.raises(sources.DataError, match=r"^1 problem\(s\) in .*\n  .*7.jpg: corrupt"):
    dataset.load_splits(config, str(tmp_path / "work"))
  config.data.on_bad_example = "skip"
  got = dataset.load_splits(config, str(tmp_path / "work"))
  kept = sorted(r.filename for recs in got.values() for r in recs)
  assert kept == sorted(n for n in names if n != "7.jpg")
