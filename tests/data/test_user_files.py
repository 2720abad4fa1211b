"""Data files as users have them: Excel's BOM, UTF-16, a caption over two lines, repeats,
a runaway caption, a header alone, images one folder too deep, a stray TFDS file; and the
image-check cache keyed by content."""

import logging
import os

import pytest

from capflax.data import check, images, sources
from tests.data import miniature


def _kaggle(tmp_path, text: bytes, names=("a.jpg", "b.jpg")):
  miniature.write_jpegs(tmp_path / "Images", names)
  (tmp_path / "captions.txt").write_bytes(text)
  return str(tmp_path)


def test_excel_bom_and_utf16_are_read(tmp_path):
  text = "image,caption\na.jpg,Un café .\nb.jpg,A dog\n"
  for name, data in (("bom", b"\xef\xbb\xbf" + text.encode()), ("utf16", text.encode("utf-16"))):
    read = sources.read(_kaggle(tmp_path / name, data))
    assert read.problems == []
    assert [(r.filename, r.captions) for r in read.records] == [
        ("a.jpg", ("Un café",)), ("b.jpg", ("A dog",))]


def test_utf16_without_its_mark_is_named(tmp_path):
  d = _kaggle(tmp_path, "image,caption\na.jpg,A dog\n".encode("utf-16-le"))
  with pytest.raises(sources.DataError, match=r"captions.txt: holds NUL bytes, so it is not "
                     r"UTF-8 text \(UTF-16 without a byte-order mark\?\); save it as UTF-8"):
    sources.read(d)


def test_a_quoted_caption_over_two_lines_is_one_caption(tmp_path):
  d = _kaggle(tmp_path, b'image,caption\na.jpg,"A dog,\nrunning"\nb.jpg,"A cat\n')
  read = sources.read(d)
  assert [(r.filename, r.captions) for r in read.records] == [("a.jpg", ("A dog, running",))]
  assert read.problems == [f"{d}/captions.txt:4: a double quote opened on this line is never "
                           f"closed; close it or remove it."]


def test_repeats_and_runaway_captions_are_warned_about_and_counted(tmp_path, capsys):
  long = " ".join(["word"] * 5000)
  d = _kaggle(tmp_path, (f"image,caption\na.jpg,A dog\na.jpg,A dog\nb.jpg,{long}\n"
                         "b.jpg,A cat on a mat\n").encode())
  read = sources.read(d)
  assert read.problems == []
  assert read.warnings == [
      f"{d}/captions.txt: a.jpg has 1 repeated caption(s) (kept; remove the repeated rows to "
      "weigh each caption once).",
      f"{d}/captions.txt: b.jpg: a caption of 5000 words (median 3.5); training reads its first "
      "data.max_len words."]
  assert read.records[0].captions == ("A dog", "A dog")  # Kept: the data's counts hold.
  check.report(d, "", 1, {"train": 1.0})
  out = capsys.readouterr().out
  assert "warnings: 2 (repeated captions: 1, outlier-length captions: 1)" in out


def test_a_header_alone_says_so(tmp_path):
  d = _kaggle(tmp_path, b"image,caption\n")
  with pytest.raises(sources.DataError, match=r"captions.txt: holds no captions \(only a "
                     r"header\?\)"):
    sources.read(d)


def test_images_one_folder_too_deep_is_one_line_with_the_fix(tmp_path):
  miniature.write_jpegs(tmp_path / "Images" / "Images", ("a.jpg", "b.jpg"))
  (tmp_path / "captions.txt").write_text("image,caption\na.jpg,A dog\nb.jpg,A cat\n")
  with pytest.raises(sources.DataError) as error:
    sources.read(str(tmp_path))
  images_dir = tmp_path / "Images"
  assert str(error.value) == (
      f"{images_dir}: none of the 2 captioned images are here, but folder {images_dir}/Images/ "
      f"is: the images are one folder too deep; move them up into {images_dir}.")
  with pytest.raises(sources.DataError, match=rf"no known layout.*; {tmp_path}/inner has one: "
                     r"pass that folder\."):
    os.rename(tmp_path / "Images", tmp_path / "x")
    os.makedirs(tmp_path / "inner" / "Images")
    os.rename(tmp_path / "captions.txt", tmp_path / "inner" / "captions.txt")
    sources.read(str(tmp_path))


def test_a_stray_tfds_dataset_info_is_no_karpathy_file(tmp_path):
  d = _kaggle(tmp_path, b"image,caption\na.jpg,A dog\nb.jpg,A cat\n")
  (tmp_path / "dataset_info.json").write_text('{"citation": "", "name": "coco_captions"}')
  assert sources.detect(d) == "kaggle"


def test_the_image_cache_is_keyed_by_content(tmp_path):
  d = _kaggle(tmp_path, b"image,caption\na.jpg,A dog\nb.jpg,A cat\n")
  records = sources.read(d).records
  assert images.check(records, cache_name=d)[1] == []
  path = records[1].path
  stat = os.stat(path)
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2:] = bytes(len(data) - len(data) // 2)  # Corrupt, same size ...
  with open(path, "wb") as f:
    f.write(data)
  os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and the same time.
  good, problems = images.check(records, cache_name=d)
  assert [r.filename for r in good] == ["a.jpg"] and problems[0].startswith(f"{path}: ")


def test_an_unwritable_cache_is_a_warning(tmp_path, monkeypatch, caplog):
  d = _kaggle(tmp_path, b"image,caption\na.jpg,A dog\nb.jpg,A cat\n")
  blocker = tmp_path / "cache_is_a_file"
  blocker.write_text("")
  monkeypatch.setenv("CAPFLAX_CACHE_DIR", str(blocker / "sub"))  # Cannot be made.
  with caplog.at_level(logging.WARNING):
    good, problems = images.check(sources.read(d).records, cache_name=d)
  assert len(good) == 2 and problems == []
  assert any("Image-check cache not saved" in r.getMessage() for r in caplog.records)


def test_a_truncated_vocab_json_is_named(tmp_path):
  from capflax.data import dataset
  (tmp_path / dataset.VOCAB_FILE).write_text('{"tokens": ["<pad>", "<bo')
  with pytest.raises(sources.DataError, match=rf"^{tmp_path}/vocab.json: not a readable "
                     r"vocabulary \(JSONDecodeError: "):
    dataset.saved_vocabulary(str(tmp_path))


def test_data_for_a_bucket_workdir_is_never_written_to_a_local_gs_folder(tmp_path, monkeypatch):
  from capflax.data import dataset
  from configs import demo
  monkeypatch.chdir(tmp_path)
  for layout in ("tfds:coco_captions", ""):
    config = demo.get_config("tiny")
    config.data.layout = layout
    with pytest.raises(sources.DataError, match=r"--workdir=gs://bucket/run is not local, so "
                       r"the data cannot be (exported|generated) into it; set --config.data.dir"):
      dataset.resolve_dir(config, "gs://bucket/run")
  assert os.listdir(tmp_path) == []
