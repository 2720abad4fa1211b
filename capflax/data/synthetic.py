"""Built-in captioning data: scenes of coloured shapes in the Kaggle Flickr8k layout.

Lets every config run with nothing downloaded. The output is exactly what the Kaggle
download looks like (`DIR/Images/*.jpg` + `DIR/captions.txt`), so it is read back by
the same reader as real Flickr8k. Captions vary like human ones: several sentence
forms, synonyms and word orders, five per image. Everything is a function of the seed.
"""

import csv
import dataclasses
import os

import numpy as np
from PIL import Image, ImageDraw

COLORS = {
    "red": (215, 35, 35),
    "green": (30, 160, 60),
    "blue": (35, 75, 220),
    "yellow": (240, 205, 20),
    "purple": (135, 50, 170),
    "orange": (245, 130, 20),
    "black": (25, 25, 25),
}
SHAPES = ("circle", "square", "triangle", "star")
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
# Where a shape's centre lies on a 3x3 grid: (row, col) -> phrases naming that place.
PLACES = {
    (0, 0): ("in the top left corner", "at the top left"),
    (0, 1): ("at the top", "near the top"),
    (0, 2): ("in the top right corner", "at the top right"),
    (1, 0): ("on the left", "on the left side"),
    (1, 1): ("in the middle", "in the center"),
    (1, 2): ("on the right", "on the right side"),
    (2, 0): ("in the bottom left corner", "at the bottom left"),
    (2, 1): ("at the bottom", "near the bottom"),
    (2, 2): ("in the bottom right corner", "at the bottom right"),
}
OPENERS = ("there is", "this picture shows", "the image shows", "we can see", "here is")


@dataclasses.dataclass(frozen=True)
class Shape:
  kind: str
  color: str
  size: str  # 'small' | 'large'
  cx: float  # centre, as a fraction of the image side
  cy: float
  radius: float  # fraction of the image side

  @property
  def place(self) -> tuple[int, int]:
    return min(int(self.cy * 3), 2), min(int(self.cx * 3), 2)


def _sample_scene(rng: np.random.Generator) -> list[Shape]:
  """One or two non-overlapping shapes; two never share a colour and kind."""
  shapes: list[Shape] = []
  count = 1 if rng.random() < 0.4 else 2
  while len(shapes) < count:
    size = str(rng.choice(list(SIZE_WORDS)))
    radius = rng.uniform(0.09, 0.12) if size == "small" else rng.uniform(0.18, 0.23)
    cx, cy = rng.uniform(radius + 0.02, 0.98 - radius, size=2)
    shape = Shape(str(rng.choice(SHAPES)), str(rng.choice(list(COLORS))), size, cx, cy, radius)
    clear = all(
        np.hypot(shape.cx - o.cx, shape.cy - o.cy) > shape.radius + o.radius + 0.04
        and (shape.kind, shape.color) != (o.kind, o.color)
        for o in shapes)
    if clear:
      shapes.append(shape)
  return shapes


def _star(cx, cy, r, points=5):
  angles = np.pi / 2 + np.arange(2 * points) * np.pi / points
  radii = np.where(np.arange(2 * points) % 2 == 0, r, 0.45 * r)
  return list(zip(cx + radii * np.cos(angles), cy - radii * np.sin(angles)))


def render(shapes: list[Shape], side: int, rng: np.random.Generator) -> Image.Image:
  """Draws the scene on a light, slightly noisy background."""
  base = rng.integers(200, 240, size=3)
  noise = rng.integers(-8, 9, size=(side, side, 1))
  image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
  draw = ImageDraw.Draw(image)
  for s in shapes:
    cx, cy, r = s.cx * side, s.cy * side, s.radius * side
    fill = COLORS[s.color]
    if s.kind == "circle":
      draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif s.kind == "square":
      h = r * 0.85
      draw.rectangle([cx - h, cy - h, cx + h, cy + h], fill=fill)
    elif s.kind == "triangle":
      draw.polygon([(cx, cy - r), (cx - r * 0.95, cy + r * 0.75), (cx + r * 0.95, cy + r * 0.75)],
                   fill=fill)
    else:
      draw.polygon(_star(cx, cy, r), fill=fill)
  return image


def _noun_phrase(s: Shape, rng, with_size=True) -> str:
  words = ([str(rng.choice(SIZE_WORDS[s.size]))] if with_size else []) + [s.color, s.kind]
  return " ".join(["an" if words[0][0] in "aeiou" else "a"] + words)


def _place(s: Shape, rng) -> str:
  return str(rng.choice(PLACES[s.place]))


def _one_shape_caption(s: Shape, rng) -> str:
  form = rng.integers(5)
  np_ = _noun_phrase(s, rng, with_size=form != 4)
  if form == 0:
    return f"{np_} {_place(s, rng)}"
  if form == 1:
    return f"{rng.choice(OPENERS)} {np_} {_place(s, rng)}"
  if form == 2:
    return f"{_place(s, rng)} there is {np_}"
  if form == 3:
    return f"{np_} on a plain background"
  return f"{np_} is {_place(s, rng)} of the picture"


def _relation(a: Shape, b: Shape) -> str | None:
  """How a stands to b, when the layout makes it unambiguous."""
  dx, dy = b.cx - a.cx, b.cy - a.cy
  if abs(dx) > 1.5 * abs(dy):
    return "to the left of" if dx > 0 else "to the right of"
  if abs(dy) > 1.5 * abs(dx):
    return "above" if dy > 0 else "below"
  return None


def _two_shape_caption(a: Shape, b: Shape, rng) -> str:
  if rng.random() < 0.5:
    a, b = b, a
  form = rng.integers(5)
  rel = _relation(a, b)
  if form in (0, 1) and rel is not None:
    lead = f"{rng.choice(OPENERS)} " if form == 1 else ""
    return f"{lead}{_noun_phrase(a, rng)} {rel} {_noun_phrase(b, rng)}"
  if form == 2:
    return f"two shapes, {_noun_phrase(a, rng)} and {_noun_phrase(b, rng)}"
  if form == 3:
    return f"{_noun_phrase(a, rng)} {_place(a, rng)} and {_noun_phrase(b, rng)} {_place(b, rng)}"
  return f"{rng.choice(OPENERS)} {_noun_phrase(a, rng)} and {_noun_phrase(b, rng)}"


def _humanise(text: str, rng) -> str:
  """Flickr-like surface: capitalised, ending with ' .', '.' or nothing."""
  text = text[0].upper() + text[1:]
  return text + str(rng.choice([" .", ".", ""], p=[0.5, 0.35, 0.15]))


def captions_for(shapes: list[Shape], rng, count=5) -> list[str]:
  make = (lambda: _one_shape_caption(shapes[0], rng)) if len(shapes) == 1 else (
      lambda: _two_shape_caption(shapes[0], shapes[1], rng))
  captions: list[str] = []
  for _ in range(50 * count):  # Draw until `count` distinct captions; scenes allow many.
    caption = make()
    if caption not in captions:
      captions.append(caption)
    if len(captions) == count:
      break
  return [_humanise(c, rng) for c in captions]


def generate(out_dir: str, num_images: int = 4000, image_size: int = 128, seed: int = 0,
             log_every: int = 1000) -> str:
  """Writes `out_dir/Images/*.jpg` and `out_dir/captions.txt`; returns out_dir."""
  from absl import logging  # Deferred: keeps this module importable without absl set up.
  images_dir = os.path.join(out_dir, "Images")
  os.makedirs(images_dir, exist_ok=True)
  rows = []
  for i in range(num_images):
    rng = np.random.default_rng([seed, i])  # Per image: any subset regenerates identically.
    shapes = _sample_scene(rng)
    name = f"shapes_{i:06d}.jpg"
    render(shapes, image_size, rng).save(os.path.join(images_dir, name), quality=92)
    rows.extend((name, c) for c in captions_for(shapes, rng))
    if log_every and (i + 1) % log_every == 0:
      logging.info("Generated %d/%d synthetic images.", i + 1, num_images)
  tmp = os.path.join(out_dir, "captions.txt.tmp")
  with open(tmp, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["image", "caption"])
    writer.writerows(rows)
  os.replace(tmp, os.path.join(out_dir, "captions.txt"))  # Last: marks the folder complete.
  return out_dir
