"""The easy built-in set (`data.synthetic_set='shapes'`): one or two large-ish shapes.

Four shapes, seven colours, two sizes, on a light, slightly noisy background; the first
set capflax shipped, kept for quick runs and comparisons.
"""

import numpy as np
from PIL import Image, ImageDraw

from capflax.data import scene_layout
from capflax.data.scene_layout import Obj

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
PLACES = {
    "top left": ("in the top left corner", "at the top left"),
    "top": ("at the top", "near the top"),
    "top right": ("in the top right corner", "at the top right"),
    "left": ("on the left", "on the left side"),
    "middle": ("in the middle", "in the center"),
    "right": ("on the right", "on the right side"),
    "bottom left": ("in the bottom left corner", "at the bottom left"),
    "bottom": ("at the bottom", "near the bottom"),
    "bottom right": ("in the bottom right corner", "at the bottom right"),
}
RELATION_WORDS = {"left of": ("to the left of",), "right of": ("to the right of",),
                  "above": ("above",), "below": ("below",)}
OPENERS = ("there is", "this picture shows", "the image shows", "we can see", "here is")
LEXICON = {"shape": {s: (s,) for s in SHAPES}, "color": {c: (c,) for c in COLORS},
           "size": SIZE_WORDS, "place": PLACES, "relation": RELATION_WORDS}
RELATION_GAP = 0.0  # Captions state a relation whenever one axis dominates.


def sample(rng: np.random.Generator) -> list[Obj]:
  """One or two non-overlapping shapes; two never share a colour and kind."""
  shapes: list[Obj] = []
  count = 1 if rng.random() < 0.4 else 2
  while len(shapes) < count:
    size = str(rng.choice(list(SIZE_WORDS)))
    radius = rng.uniform(0.09, 0.12) if size == "small" else rng.uniform(0.18, 0.23)
    cx, cy = rng.uniform(radius + 0.02, 0.98 - radius, size=2)
    shape = Obj(str(rng.choice(SHAPES)), str(rng.choice(list(COLORS))), size, cx, cy, 2 * radius)
    clear = all(
        np.hypot(shape.cx - o.cx, shape.cy - o.cy) > (shape.extent + o.extent) / 2 + 0.04
        and (shape.shape, shape.color) != (o.shape, o.color)
        for o in shapes)
    if clear:
      shapes.append(shape)
  return shapes


def render(shapes: list[Obj], side: int, rng: np.random.Generator) -> Image.Image:
  """Draws the scene on a light, slightly noisy background."""
  base = rng.integers(200, 240, size=3)
  noise = rng.integers(-8, 9, size=(side, side, 1))
  image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
  draw = ImageDraw.Draw(image)
  for s in shapes:
    cx, cy, r = s.cx * side, s.cy * side, s.extent / 2 * side
    fill = COLORS[s.color]
    if s.shape == "circle":
      draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif s.shape == "square":
      h = r * 0.85
      draw.rectangle([cx - h, cy - h, cx + h, cy + h], fill=fill)
    elif s.shape == "triangle":
      draw.polygon([(cx, cy - r), (cx - r * 0.95, cy + r * 0.75), (cx + r * 0.95, cy + r * 0.75)],
                   fill=fill)
    else:
      draw.polygon(scene_layout.star(cx, cy, r), fill=fill)
  return image


def _noun_phrase(s: Obj, rng, with_size=True) -> str:
  words = ([str(rng.choice(SIZE_WORDS[s.size]))] if with_size else []) + [s.color, s.shape]
  return " ".join(["an" if words[0][0] in "aeiou" else "a"] + words)


def _place(s: Obj, rng) -> str:
  return str(rng.choice(PLACES[s.place]))


def _one_shape_caption(s: Obj, rng) -> str:
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


def _two_shape_caption(a: Obj, b: Obj, rng) -> str:
  if rng.random() < 0.5:
    a, b = b, a
  form = rng.integers(5)
  rel = scene_layout.relation(a, b, gap=RELATION_GAP)
  if form in (0, 1) and rel is not None:
    lead = f"{rng.choice(OPENERS)} " if form == 1 else ""
    return f"{lead}{_noun_phrase(a, rng)} {RELATION_WORDS[rel][0]} {_noun_phrase(b, rng)}"
  if form == 2:
    return f"two shapes, {_noun_phrase(a, rng)} and {_noun_phrase(b, rng)}"
  if form == 3:
    return f"{_noun_phrase(a, rng)} {_place(a, rng)} and {_noun_phrase(b, rng)} {_place(b, rng)}"
  return f"{rng.choice(OPENERS)} {_noun_phrase(a, rng)} and {_noun_phrase(b, rng)}"


def captions(shapes: list[Obj], rng, count=5) -> list[str]:
  make = (lambda: _one_shape_caption(shapes[0], rng)) if len(shapes) == 1 else (
      lambda: _two_shape_caption(shapes[0], shapes[1], rng))
  out: list[str] = []
  for _ in range(50 * count):  # Draw until `count` distinct captions; scenes allow many.
    caption = make()
    if caption not in out:
      out.append(caption)
    if len(out) == count:
      break
  return [scene_layout.humanise(c, rng) for c in out]
