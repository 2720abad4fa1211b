import logging

import pytest

from capflax.data import dataset, sources, splits
from configs import coco as coco_config
from configs import flickr30k
from tests.data import miniature


def _summary(loaded):
  return {s: sorted((r.filename, r.captions) for r in recs)
          for s, recs in loaded.assigned.splits.items()}


@pytest.fixture(scope="module")
def chosen(flickr8k_text):
  return miniature.pick(flickr8k_text)


@pytest.fixture(scope="module")
def folders(tmp_path_factory, flickr8k_text, chosen):
  make = {"kaggle": lambda d: miniature.kaggle(d, flickr8k_text, list(chosen)),
          "original": lambda d: miniature.original(d, flickr8k_text, list(chosen)),
          "karpathy": lambda d: miniature.karpathy(d, flickr8k_text, chosen)}
  return {k: f(tmp_path_factory.mktemp(k)) for k, f in make.items()}


@pytest.mark.parametrize("layout", ["kaggle", "original", "karpathy"])
def test_each_layout_is_detected_and_gets_the_official_split(folders, chosen, flickr8k_text,
                                                              layout, caplog):
  with caplog.at_level(logging.WARNING):
    loaded = dataset.load(str(folders[layout]))
  assert loaded.read.layout == layout and loaded.problems == []
  expected = {s: sorted(n for n, v in chosen.items() if v == s) for s in splits.SPLITS}
  assert {s: [n for n, _ in v] for s, v in _summary(loaded).items()} == expected
  real = miniature.real_captions(flickr8k_text)
  for recs in loaded.assigned.splits.values():
    for r in recs:  # All five references, cleaned of the detached final ' .'.
      assert r.captions == tuple(c.strip().removesuffix(" .") for c in real[r.filename])
  unlisted = [n for n, v in chosen.items() if v is None]
  if layout != "karpathy":  # Karpathy's json names only listed images.
    assert loaded.assigned.unlisted == unlisted
    assert f"1 image(s) in no split list, left out: {unlisted[0]}" in caplog.text


def test_all_layouts_give_the_same_examples(folders):
  summaries = [_summary(dataset.load(str(d))) for d in folders.values()]
  assert summaries[0] == summaries[1] == summaries[2]


def test_real_token_file_equals_the_kaggle_csv(tmp_path, flickr8k_text, caplog):
  """The whole real text: 8,091 images; the bogus group left out; CRLF and spaces harmless."""
  real = miniature.real_captions(flickr8k_text)
  (tmp_path / "images").mkdir()
  for name in real:  # Empty files: reading checks names; decoding is tested elsewhere.
    (tmp_path / "images" / name).touch()
  for d in ("k", "o", "c"):
    (tmp_path / d).mkdir()
    folder = tmp_path / d / (sources.KAGGLE_IMAGES if d == "k" else sources.ORIGINAL_IMAGES)
    folder.symlink_to(tmp_path / "images")
  (tmp_path / "k" / "captions.txt").write_bytes((flickr8k_text / "captions.txt").read_bytes())
  token = (flickr8k_text / sources.ORIGINAL_TOKENS).read_bytes()
  for d, text in (("o", token), ("c", token.replace(b"\n", b"\r\n").replace(b"\t", b" \t  "))):
    (tmp_path / d / sources.ORIGINAL_TEXT).mkdir()
    (tmp_path / d / sources.ORIGINAL_TEXT / sources.ORIGINAL_TOKENS).write_bytes(text)
  kaggle = sources.read(str(tmp_path / "k"))
  with caplog.at_level(logging.INFO):
    original = sources.read(str(tmp_path / "o"))
  crlf = sources.read(str(tmp_path / "c"))
  assert "left out the 5 captions of 2258277193_586949ec62.jpg.1" in caplog.text
  assert kaggle.problems == original.problems == crlf.problems == []
  assert len(original.records) == len(real) == 8091
  assert sum(len(r.captions) for r in original.records) == 40455
  assert [(r.filename, r.captions) for r in original.records] == [
      (r.filename, r.captions) for r in kaggle.records] == [
      (r.filename, r.captions) for r in crlf.records]
  assert not any(c.endswith(" .") or "  " in c for r in crlf.records for c in r.captions)
  # No split files in this folder: the shipped official lists apply; the 91 unlisted go.
  assigned = splits.assign(original, original.records, {"train": 1.0})
  assert {s: len(v) for s, v in assigned.splits.items()} == {"train": 6000, "val": 1000,
                                                            "test": 1000}
  lists = miniature.official(flickr8k_text)
  assert sorted(assigned.unlisted) == sorted(set(real) - {n for v in lists.values() for n in v})
  assert len(assigned.unlisted) == 91


def test_shipped_lists_equal_the_release(flickr8k_text):
  assert {s: sorted(v) for s, v in splits.official_lists().items()} == {
      s: sorted(v) for s, v in miniature.official(flickr8k_text).items()}


def test_other_images_get_the_hash_split(shapes_dir):
  loaded = dataset.load(str(shapes_dir), fractions={"train": 0.5, "val": 0.25, "test": 0.25})
  assert loaded.assigned.how.startswith("a filename-hash split")
  expected = sources.hash_split(sources.read_kaggle(str(shapes_dir)),
                                {"train": 0.5, "val": 0.25, "test": 0.25})
  assert loaded.assigned.splits == expected and loaded.assigned.unlisted == []


def test_flickr30k_and_coco_karpathy_json(tmp_path, flickr8k_text):
  """Same reader for Flickr30k (one image folder) and COCO (per-image filepath, restval)."""
  names = list(miniature.pick(flickr8k_text, per_split=1, unlisted=0))
  f30k = miniature.karpathy(tmp_path / "f30k", flickr8k_text,
                            dict(zip(names, ("train", "val", "test"))), name="flickr30k",
                            image_dir="flickr30k-images")
  coco = miniature.karpathy(tmp_path / "coco", flickr8k_text,
                            dict(zip(names, ("restval", "val", "test"))), name="coco",
                            filepath="val2014")
  for root, folder, config in ((f30k, "flickr30k-images", flickr30k.get_config()),
                               (coco, "val2014", coco_config.get_config())):
    config.data.dir = str(root)
    got = dataset.load_splits(config, str(tmp_path / "workdir"))
    assert {s: [r.filename for r in v] for s, v in got.items()} == {
        "train": [names[0]], "val": [names[1]], "test": [names[2]]}
    assert got["train"][0].path == str(root / folder / names[0])
