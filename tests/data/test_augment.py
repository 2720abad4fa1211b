import ml_collections
import numpy as np
import pytest
from PIL import Image

from capflax.data import augment, pipeline, sources
from capflax.data.tokenizer import Vocabulary

SIDES = "red on the left"


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
  """4 images, red left half and blue right half; captions with and without a side word."""
  d = tmp_path_factory.mktemp("halves")
  (d / "Images").mkdir()
  pixels = np.zeros((24, 32, 3), np.uint8)
  pixels[:, :16, 0] = 255
  pixels[:, 16:, 2] = 255
  lines = ["image,caption"]
  for k in range(4):
    Image.fromarray(pixels).save(d / "Images" / f"{k}.png")
    lines += [f"{k}.png,{SIDES}", f"{k}.png,a red and blue picture"]
  (d / "captions.txt").write_text("\n".join(lines))
  records = sources.read_kaggle(str(d))
  vocab = Vocabulary.build((c for r in records for c in r.captions), min_count=1)
  return records, vocab


def _batches(halves, n, aug, **kw):
  records, vocab = halves
  it = pipeline.train_dataset(records, vocab, image_size=16, max_len=5, global_batch=4, seed=3,
                              augment=aug, **kw)
  return [next(it) for _ in range(n)]


def test_flip_never_contradicts_a_caption(halves):
  _, vocab = halves
  side_tokens = vocab.encode(SIDES, 5)
  flipped = {True: 0, False: 0}
  for b in _batches(halves, 16, augment.Augment(flip=True)):
    for image, tokens in zip(b["image"], b["tokens"]):
      says_side = np.array_equal(tokens, side_tokens)
      left_is_blue = image[8, 2, 2] > image[8, 2, 0]
      flipped[says_side] += int(left_is_blue)
  assert flipped[True] == 0  # 32 'left' pairs, never mirrored.
  assert 5 < flipped[False] < 27  # 32 other pairs, about half mirrored.


def test_augmented_stream_resumes_exactly(halves):
  aug = augment.Augment(crop_min_area=0.3, color_jitter=0.3, flip=True)
  full = _batches(halves, 5, aug)
  resumed = _batches(halves, 2, aug, start_element=3 * 4)
  for a, b in zip(full[3:], resumed):
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["tokens"], b["tokens"])
  plain = _batches(halves, 5, augment.Augment())
  crops = np.stack([b["image"] for b in full]).astype(int)
  assert np.abs(crops - np.stack([b["image"] for b in plain])).max() > 50
  assert crops.shape == (5, 4, 16, 16, 3)


def test_side_words_and_config_checks():
  assert augment.flippable("A dog runs .") and not augment.flippable("A dog, to the LEFT.")
  assert not augment.flippable("the rightmost man")
  with pytest.raises(ValueError, match="crop_min_area"):
    augment.Augment.from_config(
        ml_collections.ConfigDict(dict(crop_min_area=0.0, color_jitter=0.0, flip=False)))
