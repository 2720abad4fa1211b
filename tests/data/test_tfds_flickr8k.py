import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from capflax.data import dataset, tfds_flickr8k
from tests.data import miniature


def test_builds_from_a_manual_download(tmp_path, flickr8k_text):
  chosen = miniature.pick(flickr8k_text, per_split=2, unlisted=1)
  manual = miniature.original(tmp_path / "manual", flickr8k_text, list(chosen))
  test_image = next(n for n, s in chosen.items() if s == "test")
  rgba = np.zeros((12, 10, 4), np.uint8)
  rgba[..., 1], rgba[..., 3] = 180, 255
  # An RGBA PNG under a .jpg name still decodes; it is stored as RGB.
  Image.fromarray(rgba, "RGBA").save(manual / "Flicker8k_Dataset" / test_image, format="PNG")
  builder = tfds_flickr8k.Flickr8k(data_dir=str(tmp_path / "tfds"))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  assert {s: builder.info.splits[s].num_examples for s in ("train", "val", "test")} == {
      "train": 2, "val": 2, "test": 2}
  expected = {s: {r.filename: r for r in recs}
              for s, recs in dataset.load(str(manual)).assigned.splits.items()}
  for split in ("train", "val", "test"):
    for ex in tfds.as_numpy(builder.as_dataset(split=split)):
      name = ex["image/filename"].decode()
      record = expected[split].pop(name)
      assert [c.decode() for c in ex["captions"]] == list(record.captions)
      assert ex["image"].shape[-1] == 3
      if name == test_image:
        np.testing.assert_allclose(ex["image"][5, 5], [0, 180, 0], atol=3)
      else:
        assert ex["image"].shape == (38, 50, 3)
    assert expected[split] == {}
  assert "adityajn105/flickr8k" in builder.MANUAL_DOWNLOAD_INSTRUCTIONS
  assert "University of Illinois" in builder.MANUAL_DOWNLOAD_INSTRUCTIONS
