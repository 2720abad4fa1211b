"""Objects placed in an image, and the facts about them that captions state.

Shared by the built-in scene sets: an object's grid place (a 3x3 grid over the image, by
its centre) and the relations between two objects, both as the sidecar records them.
"""

import dataclasses

import numpy as np

# Grid place names by (row, column); each set's lexicon gives the phrases for them.
GRID = (("top left", "top", "top right"),
        ("left", "middle", "right"),
        ("bottom left", "bottom", "bottom right"))
RELATIONS = ("left of", "right of", "above", "below")


@dataclasses.dataclass(frozen=True)
class Obj:
  shape: str
  color: str
  size: str
  cx: float  # centre, as fractions of the image width and height
  cy: float
  extent: float  # the longer side of its bounding box, as a fraction of the image side
  aspect: float = 1.0  # width / height of its bounding box (ovals, rectangles)

  @property
  def place(self) -> str:
    return GRID[min(int(self.cy * 3), 2)][min(int(self.cx * 3), 2)]

  def truth(self) -> dict:
    return {"shape": self.shape, "color": self.color, "size": self.size, "place": self.place,
            "center": (round(self.cx, 4), round(self.cy, 4))}


def relation(a: Obj, b: Obj, ratio: float = 1.5, gap: float = 0.08) -> str | None:
  """How a stands to b, when one axis clearly dominates; None on a diagonal."""
  dx, dy = b.cx - a.cx, b.cy - a.cy
  if abs(dx) > ratio * abs(dy) and abs(dx) > gap:
    return "left of" if dx > 0 else "right of"
  if abs(dy) > ratio * abs(dx) and abs(dy) > gap:
    return "above" if dy > 0 else "below"
  return None


def relations(objects: list[Obj], **kw) -> frozenset[tuple[int, str, int]]:
  """Every (i, relation, j) that holds, both directions."""
  return frozenset((i, r, j) for i, a in enumerate(objects) for j, b in enumerate(objects)
                   if i != j and (r := relation(a, b, **kw)) is not None)


def humanise(text: str, rng) -> str:
  """Flickr-like surface: capitalised, ending with ' .', '.' or nothing."""
  text = text[0].upper() + text[1:]
  return text + str(rng.choice([" .", ".", ""], p=[0.5, 0.35, 0.15]))


def polygon(cx: float, cy: float, radius: float, corners: int, turn: float = 0.0):
  """Regular polygon vertices (pixels), first corner at the top, turned by `turn` radians."""
  angles = np.pi / 2 + turn + 2 * np.pi * np.arange(corners) / corners
  return list(zip(cx + radius * np.cos(angles), cy - radius * np.sin(angles)))


def star(cx: float, cy: float, radius: float, points: int = 5, inner: float = 0.45):
  angles = np.pi / 2 + np.arange(2 * points) * np.pi / points
  radii = np.where(np.arange(2 * points) % 2 == 0, radius, inner * radius)
  return list(zip(cx + radii * np.cos(angles), cy - radii * np.sin(angles)))
