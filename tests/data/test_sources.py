import shutil

import pytest

from capflax.data import sources


def _kaggle(tmp_path, lines, images=("a.jpg", "b.jpg")):
  (tmp_path / "Images").mkdir()
  for name in images:
    (tmp_path / "Images" / name).write_bytes(b"")
  (tmp_path / "captions.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
  return tmp_path


def test_reads_generated_data_in_order(shapes_dir):
  records = sources.read_kaggle(str(shapes_dir))
  assert len(records) == 240
  assert records[0].filename == "shapes_000000.jpg"
  assert all(len(r.captions) == 5 for r in records)
  assert all(r.path.endswith(r.filename) for r in records)


def test_quoted_commas_and_whitespace(tmp_path):
  d = _kaggle(tmp_path, ["image,caption", 'a.jpg,"A dog ,  running,  fast ."', "b.jpg,  A cat\t."])
  records = sources.read_kaggle(str(d))
  # Stray whitespace collapsed, the detached final ' .' dropped, inner punctuation kept.
  assert [r.captions for r in records] == [("A dog , running, fast",), ("A cat",)]


def test_crlf_line_endings(tmp_path):
  d = _kaggle(tmp_path, [])
  (d / "captions.txt").write_bytes(b"image,caption\r\na.jpg,A dog .\r\nb.jpg,A cat .\r\n")
  assert [r.captions for r in sources.read_kaggle(str(d))] == [("A dog",), ("A cat",)]


def test_missing_folder_and_files_are_named(tmp_path):
  with pytest.raises(sources.DataError, match="no such folder"):
    sources.read_kaggle(str(tmp_path / "nope"))
  d = _kaggle(tmp_path, ["image,caption", "a.jpg,A dog ."])
  shutil.rmtree(d / "Images")
  with pytest.raises(sources.DataError, match=r"Images: missing folder"):
    sources.read_kaggle(str(d))


def test_every_problem_is_listed_with_its_line(tmp_path):
  d = _kaggle(tmp_path, ["image,caption", "a.jpg,A dog .", "c.jpg,A ghost .", "b.jpg,  ",
                         "b.jpg,too,many"])
  with pytest.raises(sources.DataError) as e:
    sources.read_kaggle(str(d))
  message = str(e.value)
  assert message.startswith("3 problem(s)")
  assert "captions.txt:3: image c.jpg not found" in message
  assert "captions.txt:4: empty caption for b.jpg" in message
  assert "captions.txt:5: expected 2 fields" in message


def test_bad_header_and_non_utf8(tmp_path):
  d = _kaggle(tmp_path, ["filename,text", "a.jpg,A dog ."])
  with pytest.raises(sources.DataError, match=r"captions.txt:1: expected the header"):
    sources.read_kaggle(str(d))
  (d / "captions.txt").write_bytes(b"image,caption\na.jpg,A caf\xe9 .\n")
  with pytest.raises(sources.DataError, match="not UTF-8"):
    sources.read_kaggle(str(d))


def test_hash_split_is_deterministic_disjoint_and_stable(shapes_dir):
  records = sources.read_kaggle(str(shapes_dir))
  fractions = {"train": 0.75, "val": 0.125, "test": 0.125}
  splits = sources.hash_split(records, fractions)
  names = {k: {r.filename for r in v} for k, v in splits.items()}
  assert sum(map(len, names.values())) == len(records)
  assert not (names["train"] & names["val"] or names["train"] & names["test"]
              or names["val"] & names["test"])
  assert 0.65 < len(names["train"]) / len(records) < 0.85
  # Order of input and removal of other images change nothing for the rest.
  reordered = sources.hash_split(records, dict(reversed(fractions.items())))
  assert {k: [r.filename for r in v] for k, v in reordered.items()} == {
      k: [r.filename for r in v] for k, v in splits.items()}  # Key order does not matter.
  again = sources.hash_split(records[::-1][:200], fractions)
  for k, v in again.items():
    assert {r.filename for r in v} <= names[k]
