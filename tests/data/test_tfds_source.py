"""`data.layout='tfds:coco_captions'` on a miniature prepared `coco_captions/2014`.

The miniature is written by TFDS itself, with the real builder's feature spec, name,
config and version, and read back through `tfds.builder('coco_captions/2014')` exactly as
a copy made by `tfds build coco_captions` would be.
"""

import io
import os

import numpy as np
import pytest
from PIL import Image
from tensorflow_datasets.object_detection import coco_captions

from capflax.data import dataset, pipeline, sources
from configs import coco_tfds

# TFDS split -> {filename: (grey level, (height, width), raw captions)}. COCO's raw
# captions end in full stops, some in a stray space; one image is greyscale.
MINI = {
    "train": {"COCO_train2014_000000000009.jpg": (40, (12, 16), ["A plate of food, with broccoli.",
                                                                 "Closeup of bins of food. "]),
              "COCO_train2014_000000000025.jpg": (80, (10, 8), ["A giraffe eating leaves."])},
    "restval": {"COCO_val2014_000000000042.jpg": (120, (8, 8), ["A dog lying on a shoe."])},
    "val": {"COCO_val2014_000000000073.jpg": (160, (6, 10), ["A motorcycle  parked indoors.",
                                                             "Café racer on display."])},
    "test": {"COCO_val2014_000000000074.jpg": (200, (9, 9), ["A dog asleep on a street."])},
}
GREY = "COCO_val2014_000000000042.jpg"
# The same captions as every layout reads them: whitespace collapsed, text otherwise kept.
EXPECTED_CAPTIONS = {
    "COCO_train2014_000000000009.jpg": ("A plate of food, with broccoli.",
                                        "Closeup of bins of food."),
    "COCO_train2014_000000000025.jpg": ("A giraffe eating leaves.",),
    "COCO_val2014_000000000042.jpg": ("A dog lying on a shoe.",),
    "COCO_val2014_000000000073.jpg": ("A motorcycle parked indoors.", "Café racer on display."),
    "COCO_val2014_000000000074.jpg": ("A dog asleep on a street.",),
}


def _jpeg(level: int, shape: tuple[int, int], name: str) -> bytes:
  mode = "L" if name == GREY else "RGB"
  buf = io.BytesIO()
  Image.new(mode, shape[::-1], level if mode == "L" else (level, 255 - level, 0)).save(
      buf, format="JPEG", quality=95)
  return buf.getvalue()


class _MiniCocoCaptions(coco_captions.CocoCaptions, skip_registration=True):
  """The real builder with `mini` (default MINI) as its source instead of the download."""
  name = "coco_captions"

  def __init__(self, mini=MINI, **kwargs):
    self._mini = mini
    super().__init__(**kwargs)

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in self._mini}

  def _generate_examples(self, split):
    for i, (name, (level, shape, captions)) in enumerate(self._mini[split].items()):
      yield name, {"image": _jpeg(level, shape, name), "image/filename": name,
                   "image/id": int(name[-8:-4]), "objects": [],
                   "captions": [{"id": 10 * i + j, "text": t} for j, t in enumerate(captions)]}


@pytest.fixture(scope="module")
def tfds_data_dir(tmp_path_factory) -> str:
  out = str(tmp_path_factory.mktemp("tensorflow_datasets"))
  _MiniCocoCaptions(config="2014", data_dir=out).download_and_prepare()
  return out


def _config(tfds_data_dir: str, export_dir: str = ""):
  c = coco_tfds.get_config()
  c.data.update(tfds_data_dir=tfds_data_dir, dir=export_dir)
  return c


def test_records_splits_and_captions_come_through_exactly(tfds_data_dir, tmp_path):
  workdir = str(tmp_path / "work")
  got = dataset.load_splits(_config(tfds_data_dir), workdir)
  # Karpathy's restval is trained on.
  expected_names = {"train": sorted([*MINI["train"], *MINI["restval"]]),
                    "val": list(MINI["val"]), "test": list(MINI["test"])}
  assert {s: sorted(r.filename for r in recs) for s, recs in got.items()} == expected_names
  for recs in got.values():
    for r in recs:
      assert r.captions == EXPECTED_CAPTIONS[r.filename]
      split = next(s for s in MINI if r.filename in MINI[s])
      level, shape, _ = MINI[split][r.filename]
      with open(r.path, "rb") as f:  # The stored JPEG bytes, not a re-encoding.
        assert f.read() == _jpeg(level, shape, r.filename)
      assert r.path == os.path.join(workdir, "tfds_export", "images", r.filename)


def test_exported_images_reach_the_pipeline_as_rgb(tfds_data_dir, tmp_path):
  records = dataset.load_splits(_config(tfds_data_dir), str(tmp_path))["train"]
  batch = next(pipeline.eval_dataset(records, image_size=8, global_batch=len(records)))
  for r, image in zip(records, batch["image"]):  # [8, 8, 3] each
    level, _, _ = MINI["restval" if r.filename == GREY else "train"][r.filename]
    rgb = (level,) * 3 if r.filename == GREY else (level, 255 - level, 0)
    np.testing.assert_allclose(image.reshape(-1, 3).mean(0), rgb, atol=4)


def test_export_is_reused_by_a_resumed_run(tfds_data_dir, tmp_path):
  export_dir = str(tmp_path / "coco_export")
  first = dataset.load_splits(_config(tfds_data_dir, export_dir), str(tmp_path / "a"))
  json_path = os.path.join(export_dir, "dataset_coco_captions.json")
  stamp = os.stat(json_path).st_mtime_ns
  again = dataset.load_splits(_config(tfds_data_dir, export_dir), str(tmp_path / "b"))
  assert again == first
  assert os.stat(json_path).st_mtime_ns == stamp
  # The export is an ordinary Karpathy-layout folder, usable with configs/coco.py.
  assert sources.detect(export_dir) == "karpathy"


def test_unprepared_data_names_the_data_dir_and_how_to_prepare_it(tmp_path):
  empty = str(tmp_path / "no_tfds")
  with pytest.raises(sources.DataError) as e:
    dataset.load_splits(_config(empty), str(tmp_path / "work"))
  message = str(e.value)
  assert "\n" not in message
  assert message.startswith(os.path.join(empty, "coco_captions", "2014"))
  assert f"tfds build coco_captions/2014 --data_dir={empty}" in message


def test_unknown_tfds_name_is_rejected(tmp_path):
  c = _config(str(tmp_path))
  c.data.layout = "tfds:coco"
  with pytest.raises(sources.DataError, match="expected one of tfds:coco_captions"):
    dataset.load_splits(c, str(tmp_path / "work"))


def test_an_image_in_two_splits_is_an_error(tmp_path):
  mini = {**MINI, "test": {**MINI["test"], **MINI["val"]}}  # A val image also in test.
  data_dir = str(tmp_path / "tensorflow_datasets")
  _MiniCocoCaptions(mini, config="2014", data_dir=data_dir).download_and_prepare()
  with pytest.raises(sources.DataError, match="split 'test': image/filename "
                     "'COCO_val2014_000000000073.jpg' is repeated"):
    dataset.load_splits(_config(data_dir), str(tmp_path / "work"))
