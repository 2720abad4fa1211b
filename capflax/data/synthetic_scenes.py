"""The built-in diagnostic set (`data.synthetic_set='scenes'`): scenes a captioner must read.

One to three objects of eight shapes (with look-alike pairs: circle/oval, square/rectangle,
square/diamond, star/cross), eight colours and three sizes (small objects span under a
tenth of the image side), on plain, noisy, striped, checked or graded backgrounds. Every
caption names every object with its size, colour, shape and place on a 3x3 grid; some also
state how two objects stand to each other. Centres keep clear of the grid lines, so a
place is never a matter of a pixel.
"""

import numpy as np
from PIL import Image, ImageDraw

from capflax.data import scene_layout
from capflax.data.scene_layout import Obj

COLORS = {
    "red": (205, 35, 35), "green": (35, 150, 60), "blue": (40, 80, 215),
    "yellow": (235, 200, 25), "purple": (130, 50, 170), "orange": (240, 130, 25),
    "black": (30, 30, 30), "brown": (125, 75, 35),
}
SHAPES = ("circle", "oval", "square", "rectangle", "triangle", "diamond", "star", "cross")
# size -> range of the bounding box's longer side, as a fraction of the image side.
SIZES = {"small": (0.075, 0.095), "medium": (0.16, 0.21), "large": (0.28, 0.36)}
LEXICON = {
    "shape": {"circle": ("circle", "disc"), "oval": ("oval", "ellipse"), "square": ("square",),
              "rectangle": ("rectangle", "oblong"), "triangle": ("triangle",),
              "diamond": ("diamond", "rhombus"), "star": ("star",),
              "cross": ("cross", "plus sign")},
    "color": {c: (c,) for c in COLORS} | {"purple": ("purple", "violet")},
    "size": {"small": ("small", "tiny", "little"), "medium": ("medium", "medium sized"),
             "large": ("large", "big")},
    "place": {
        "top left": ("in the top left corner", "at the top left", "in the upper left corner"),
        "top": ("at the top", "near the top", "along the top edge"),
        "top right": ("in the top right corner", "at the top right", "in the upper right corner"),
        "left": ("on the left", "on the left side", "at the left edge"),
        "middle": ("in the middle", "in the center", "in the centre"),
        "right": ("on the right", "on the right side", "at the right edge"),
        "bottom left": ("in the bottom left corner", "at the bottom left",
                        "in the lower left corner"),
        "bottom": ("at the bottom", "near the bottom", "along the bottom edge"),
        "bottom right": ("in the bottom right corner", "at the bottom right",
                         "in the lower right corner"),
    },
    "relation": {"left of": ("to the left of", "left of"), "right of": ("to the right of",
                 "right of"), "above": ("above", "over"), "below": ("below", "under", "beneath")},
}
BACKGROUNDS = ("plain", "noisy", "striped", "checked", "graded")
OPENERS = ("", "there is", "this picture shows", "the image shows", "we can see", "here is",
           "a drawing of")
COUNTS = {1: "one shape", 2: "two shapes", 3: "three shapes"}
GRID_MARGIN = 0.025  # Centres keep this far from the 3x3 grid lines.
RELATION_GAP = 0.08  # Two objects this close on both axes have no stated relation.
SUPERSAMPLE = 2  # Drawn at this multiple of the side, then downsampled: smooth edges.


def _centre(extent: float, rng) -> float:
  while True:
    c = rng.uniform(extent / 2 + 0.02, 0.98 - extent / 2)
    if min(abs(c - 1 / 3), abs(c - 2 / 3)) > GRID_MARGIN:
      return float(c)


def sample(rng: np.random.Generator) -> list[Obj]:
  """One to three objects with clear boxes between them; no two share shape and colour."""
  count = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
  while True:
    objects: list[Obj] = []
    for _ in range(60):
      size = str(rng.choice(list(SIZES)))
      extent = float(rng.uniform(*SIZES[size]))
      shape = str(rng.choice(SHAPES))
      aspect = 1.0
      if shape in ("oval", "rectangle"):
        aspect = 0.55 if rng.random() < 0.5 else 1 / 0.55  # Lying or standing.
      o = Obj(shape, str(rng.choice(list(COLORS))), size, _centre(extent, rng),
              _centre(extent, rng), extent, aspect)
      if all(max(abs(o.cx - p.cx), abs(o.cy - p.cy)) > (o.extent + p.extent) / 2 + 0.03
             and (o.shape, o.color) != (p.shape, p.color) for p in objects):
        objects.append(o)
      if len(objects) == count:
        return objects


def _background(side: int, rng) -> np.ndarray:
  """A light, low-saturation background [side, side, 3] float."""
  kind = str(rng.choice(BACKGROUNDS))
  base = rng.uniform(185, 240) + rng.uniform(-12, 12, size=3)  # [3]
  y, x = np.mgrid[0:side, 0:side] / side  # [side, side]
  if kind == "plain":
    shade = np.zeros((side, side))
  elif kind == "noisy":
    shade = rng.normal(0, 16, size=(side, side))
  elif kind == "striped":
    angle, period = rng.uniform(0, np.pi), rng.uniform(0.05, 0.14)
    shade = 14 * np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
  elif kind == "checked":
    cell = rng.uniform(0.06, 0.14)
    shade = 12 * (((x // cell) + (y // cell)) % 2 * 2 - 1)
  else:
    angle = rng.uniform(0, 2 * np.pi)
    shade = 40 * ((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle))
  return base + shade[..., None]


def _draw(draw: ImageDraw.ImageDraw, o: Obj, side: int, fill) -> None:
  cx, cy, r = o.cx * side, o.cy * side, o.extent / 2 * side
  rx, ry = (r, r * o.aspect) if o.aspect < 1 else (r / o.aspect, r)  # Half width, half height.
  if o.shape in ("circle", "oval"):
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)
  elif o.shape in ("square", "rectangle"):
    draw.rectangle([cx - rx, cy - ry, cx + rx, cy + ry], fill=fill)
  elif o.shape == "triangle":
    draw.polygon([(cx, cy - r), (cx - r, cy + 0.73 * r), (cx + r, cy + 0.73 * r)], fill=fill)
  elif o.shape == "diamond":
    draw.polygon(scene_layout.polygon(cx, cy, r, 4), fill=fill)
  elif o.shape == "star":
    draw.polygon(scene_layout.star(cx, cy, r), fill=fill)
  else:  # A plus sign: two bars a third of its width thick.
    t = r / 3
    draw.rectangle([cx - r, cy - t, cx + r, cy + t], fill=fill)
    draw.rectangle([cx - t, cy - r, cx + t, cy + r], fill=fill)


def render(objects: list[Obj], side: int, rng: np.random.Generator) -> Image.Image:
  big = side * SUPERSAMPLE
  pixels = np.clip(_background(big, rng), 0, 255).astype(np.uint8)
  image = Image.fromarray(pixels)
  draw = ImageDraw.Draw(image)
  for o in objects:
    fill = tuple(int(v) for v in np.clip(np.array(COLORS[o.color]) + rng.integers(-12, 13, 3),
                                         0, 255))
    _draw(draw, o, big, fill)
  return image.resize((side, side), Image.LANCZOS)


def _pick(rng, options) -> str:
  return str(options[rng.integers(len(options))])


def _article(phrase: str) -> str:
  return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _noun_phrase(o: Obj, rng) -> str:
  lex = LEXICON
  return _article(" ".join((_pick(rng, lex["size"][o.size]), _pick(rng, lex["color"][o.color]),
                            _pick(rng, lex["shape"][o.shape]))))


def _place(o: Obj, rng) -> str:
  return _pick(rng, LEXICON["place"][o.place])


def _listing(parts: list[str]) -> str:
  return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _caption(objects: list[Obj], facts, rng) -> str:
  order = [objects[i] for i in rng.permutation(len(objects))]
  described = [f"{_noun_phrase(o, rng)} {_place(o, rng)}" for o in order]
  form = int(rng.integers(5))
  if form == 0:
    opener = _pick(rng, OPENERS)
    return (f"{opener} " if opener else "") + _listing(described)
  if form == 1:
    return f"{COUNTS[len(order)]}: " + _listing(described)
  if form == 2:  # Place first: 'in the middle there is a ... and at the top a ...'.
    first, *rest = order
    text = f"{_place(first, rng)} there is {_noun_phrase(first, rng)}"
    return text + "".join(f", and {_place(o, rng)} {_noun_phrase(o, rng)}" for o in rest)
  if form == 3 and facts:  # A relation between two of them, the others after.
    i, rel, j = sorted(facts)[int(rng.integers(len(facts)))]
    a, b = objects[i], objects[j]
    text = (f"{_noun_phrase(a, rng)} {_place(a, rng)} is "
            f"{_pick(rng, LEXICON['relation'][rel])} {_noun_phrase(b, rng)} {_place(b, rng)}")
    rest = [f"{_noun_phrase(o, rng)} {_place(o, rng)}" for k, o in enumerate(objects)
            if k not in (i, j)]
    return text + "".join(f", and {r}" for r in rest)
  verbs = ("sits", "is", "can be seen")  # '... sits in the middle, while ... is at the top'.
  clauses = [f"{_noun_phrase(o, rng)} {_pick(rng, verbs)} {_place(o, rng)}" for o in order]
  background = "" if rng.random() < 0.5 else " on a light background"
  text = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " while " + clauses[-1]
  return text + background


def captions(objects: list[Obj], rng, count: int = 5) -> list[str]:
  facts = scene_layout.relations(objects, gap=RELATION_GAP)
  out: list[str] = []
  for _ in range(50 * count):  # Draw until `count` distinct captions.
    caption = _caption(objects, facts, rng)
    if caption not in out:
      out.append(caption)
    if len(out) == count:
      break
  return [scene_layout.humanise(c, rng) for c in out]
