import csv
import hashlib

import numpy as np
import pytest
from PIL import Image

from capflax.data import synthetic


def _rows(folder):
  with open(folder / "captions.txt", newline="", encoding="utf-8") as f:
    return list(csv.reader(f))


def test_kaggle_layout_with_five_captions_per_image(shapes_dir):
  rows = _rows(shapes_dir)
  assert rows[0] == ["image", "caption"]
  images = sorted(p.name for p in (shapes_dir / "Images").iterdir())
  assert len(images) == 240
  per_image = {}
  for name, caption in rows[1:]:
    per_image.setdefault(name, []).append(caption)
  assert sorted(per_image) == images
  assert all(len(c) == 5 and len(set(c)) == 5 for c in per_image.values())


def test_commas_are_csv_quoted(shapes_dir):
  raw = (shapes_dir / "captions.txt").read_text()
  assert any("," in c for _, c in _rows(shapes_dir)[1:])
  assert all(line.count('"') in (0, 2) for line in raw.splitlines())


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
  a, b, c = (synthetic.generate(str(tmp_path / n), 20, 48, seed=s, log_every=0)
             for n, s in (("a", 1), ("b", 1), ("c", 2)))
  digest = lambda d: hashlib.sha256(
      open(f"{d}/captions.txt", "rb").read() + open(f"{d}/Images/shapes_000007.jpg", "rb").read()
  ).hexdigest()
  assert digest(a) == digest(b) != digest(c)


def test_captions_vary_in_form_and_wording(shapes_dir):
  captions = [c.lower() for _, c in _rows(shapes_dir)[1:]]
  openings = {" ".join(c.split()[:2]) for c in captions}
  assert len(openings) >= 8
  for synonyms in (("big", "large"), ("small", "little", "tiny"), ("middle", "center")):
    assert all(any(f" {w} " in c for c in captions) for w in synonyms)


@pytest.mark.parametrize("index", range(12))
def test_single_shape_captions_name_the_colour_drawn(index):
  """Captions name the colour of the drawn pixels, the shape and its place."""
  rng = np.random.default_rng([5, index])
  kind, color = str(rng.choice(synthetic.SHAPES)), str(rng.choice(list(synthetic.COLORS)))
  shape = synthetic.Shape(kind, color, "large", 0.5, 0.5, 0.2)
  pixels = np.asarray(synthetic.render([shape], 64, rng), np.float32)  # [64, 64, 3]
  centre = pixels[28:36, 28:36].reshape(-1, 3).mean(0)
  nearest = min(synthetic.COLORS, key=lambda n: np.sum((np.array(synthetic.COLORS[n]) - centre)**2))
  assert nearest == shape.color
  for caption in map(str.lower, synthetic.captions_for([shape], rng)):
    assert f"{shape.color} {shape.kind}" in caption
    assert any(p in caption for p in synthetic.PLACES[(1, 1)]) or "background" in caption


def test_articles_agree(shapes_dir):
  captions = [c.lower() for _, c in _rows(shapes_dir)[1:]]
  assert not any(" a orange" in c or c.startswith("a orange") for c in captions)
  assert any("an orange" in c for c in captions)


def test_image_is_rgb_of_requested_size(tmp_path):
  synthetic.generate(str(tmp_path), 3, 80, seed=0, log_every=0)
  with Image.open(tmp_path / "Images" / "shapes_000002.jpg") as im:
    assert im.mode == "RGB" and im.size == (80, 80)
