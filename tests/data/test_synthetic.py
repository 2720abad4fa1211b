import collections
import csv
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from capflax.data import scene_file, scene_layout, synthetic, synthetic_scenes, synthetic_shapes
from capflax.metrics import scene


def _rows(folder):
  with open(folder / "captions.txt", newline="", encoding="utf-8") as f:
    return list(csv.reader(f))


def _per_image(folder):
  per_image = {}
  for name, caption in _rows(folder)[1:]:
    per_image.setdefault(name, []).append(caption)
  return per_image


def test_kaggle_layout_with_five_captions_per_image(shapes_dir):
  rows = _rows(shapes_dir)
  assert rows[0] == ["image", "caption"]
  images = sorted(p.name for p in (shapes_dir / "Images").iterdir())
  assert len(images) == 240
  per_image = _per_image(shapes_dir)
  assert sorted(per_image) == images
  assert all(len(c) == 5 and len(set(c)) == 5 for c in per_image.values())


def test_commas_are_csv_quoted(shapes_dir):
  raw = (shapes_dir / "captions.txt").read_text()
  assert any("," in c for _, c in _rows(shapes_dir)[1:])
  assert all(line.count('"') in (0, 2) for line in raw.splitlines())


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
  a, b, c = (synthetic.generate(str(tmp_path / n), 20, 48, seed=s, log_every=0)
             for n, s in (("a", 1), ("b", 1), ("c", 2)))
  digest = lambda d: hashlib.sha256(b"".join(
      open(f"{d}/{f}", "rb").read() for f in ("captions.txt", "scenes.json",
                                              "Images/shapes_000007.jpg"))).hexdigest()
  assert digest(a) == digest(b) != digest(c)


def test_captions_vary_in_form_and_wording(shapes_dir):
  captions = [c.lower() for _, c in _rows(shapes_dir)[1:]]
  openings = {" ".join(c.split()[:2]) for c in captions}
  assert len(openings) >= 8
  for synonyms in (("big", "large"), ("small", "little", "tiny"), ("middle", "center"),
                   ("oval", "ellipse"), ("cross", "plus sign"), ("to the left of", "left of")):
    assert all(any(f" {w} " in c for c in captions) for w in synonyms)


@pytest.mark.parametrize("scene_set", ["scenes", "shapes"])
def test_every_caption_states_the_truth_in_the_sidecar(tmp_path, scene_set):
  """Each reference caption, read with the sidecar's own lexicon, is right in everything it
  says; 'scenes' captions name every object with all its attributes."""
  folder = tmp_path / scene_set
  synthetic.generate(str(folder), 150, 48, seed=4, log_every=0, scene_set=scene_set)
  truth = scene_file.read(str(folder))
  per_image = _per_image(folder)
  assert sorted(truth.scenes) == sorted(per_image)
  for k in range(5):
    scores, _ = scene.score_split({n: c[k] for n, c in per_image.items()}, truth)
    stated = [a for a in ("shape", "color", "size", "place", "relation") if f"{a}_precision" in scores]
    assert len(stated) >= 4 and all(scores[f"{a}_precision"] == 1.0 for a in stated), scores
    if scene_set == "scenes":
      assert scores["object_recall"] == scores["count_accuracy"] == 1.0


def test_scenes_cover_the_shapes_sizes_counts_and_backgrounds(shapes_dir):
  truth = scene_file.read(str(shapes_dir))
  objects = [o for s in truth.scenes.values() for o in s.objects]
  assert {o["shape"] for o in objects} == set(synthetic_scenes.SHAPES)
  assert len(synthetic_scenes.SHAPES) >= 8
  assert {len(s.objects) for s in truth.scenes.values()} == {1, 2, 3}
  assert {o["size"] for o in objects} == {"small", "medium", "large"}
  assert {o["place"] for o in objects} == {p for row in scene_layout.GRID for p in row}
  assert synthetic_scenes.SIZES["small"][1] < 0.1  # Small: under a tenth of the side.
  assert any(s.relations for s in truth.scenes.values())
  with open(shapes_dir / "scenes.json") as f:
    assert json.load(f)["lexicon"]["shape"]["cross"] == ["cross", "plus sign"]


@pytest.mark.parametrize("index", range(8))
def test_objects_are_drawn_in_their_colour_at_their_centre(index):
  rng = np.random.default_rng([5, index])
  shape = synthetic_scenes.SHAPES[index]
  color = list(synthetic_scenes.COLORS)[index]
  o = scene_layout.Obj(shape, color, "large", 0.5, 0.5, 0.34)
  pixels = np.asarray(synthetic_scenes.render([o], 64, rng), np.float32)  # [64, 64, 3]
  centre = pixels[30:34, 30:34].reshape(-1, 3).mean(0)
  palette = synthetic_scenes.COLORS
  assert min(palette, key=lambda n: np.sum((np.array(palette[n]) - centre) ** 2)) == color
  assert np.abs(pixels[2:6, 2:6].mean((0, 1)) - centre).max() > 20  # Not the background.


def test_small_objects_are_small_and_large_ones_large(shapes_dir):
  rng = np.random.default_rng(0)
  sizes = collections.defaultdict(list)
  for _ in range(200):
    for o in synthetic_scenes.sample(rng):
      sizes[o.size].append(o.extent)
  assert max(sizes["small"]) < 0.1 < min(sizes["medium"])
  assert max(sizes["medium"]) < min(sizes["large"])


def test_the_easy_set_stays_available(tmp_path):
  synthetic.generate(str(tmp_path), 60, 48, seed=0, log_every=0, scene_set="shapes")
  truth = scene_file.read(str(tmp_path))
  assert {o["shape"] for s in truth.scenes.values() for o in s.objects} <= set(
      synthetic_shapes.SHAPES)
  assert max(len(s.objects) for s in truth.scenes.values()) == 2
  with pytest.raises(ValueError, match="unknown set 'hard'.*'scenes', 'shapes'"):
    synthetic.generate(str(tmp_path / "x"), 1, 48, scene_set="hard")


def test_articles_agree(shapes_dir):
  captions = [c.lower() for _, c in _rows(shapes_dir)[1:]]
  assert not any(" a orange" in c or c.startswith("a orange") for c in captions)


def test_image_is_rgb_of_requested_size(tmp_path):
  synthetic.generate(str(tmp_path), 3, 80, seed=0, log_every=0)
  with Image.open(tmp_path / "Images" / "shapes_000002.jpg") as im:
    assert im.mode == "RGB" and im.size == (80, 80)


def test_worker_processes_write_the_same_files_as_one_process(tmp_path, monkeypatch):
  monkeypatch.setattr(synthetic, "CHUNK", 7)  # 20 images: three chunks over two processes.
  one, two = (synthetic.generate(str(tmp_path / n), 20, 48, seed=5, log_every=0, workers=w)
              for n, w in (("one", 1), ("two", 2)))
  for f in ["captions.txt", "scenes.json"] + [f"Images/shapes_{i:06d}.jpg" for i in range(20)]:
    assert open(f"{one}/{f}", "rb").read() == open(f"{two}/{f}", "rb").read(), f
