"""The scene sidecar: each image's true scene, and the words its captions use for it.

A data folder may hold `scenes.json` beside its captions. It is self-describing, so scenes
from any generator can be scored (capflax/metrics/scene.py):

    {"format": "capflax-scenes/1",
     "lexicon": {ATTRIBUTE: {VALUE: [PHRASE, ...]}, ..., "relation": {RELATION: [PHRASE, ...]}},
     "images": {FILENAME: {"objects": [{"shape": VALUE, ATTRIBUTE: VALUE, ...,
                                        "center": [x, y]}, ...],
                           "relations": [[I, RELATION, J], ...]}}}

ATTRIBUTE is "shape" (required: the noun naming an object), "color" and "size" (words
before the noun), "place" (a phrase such as "in the top left corner"). `center` is in
fractions of the image's width and height, from the top left. `relations` lists every
fact "object I stands in RELATION to object J" that holds, each direction its own entry.
"""

import dataclasses
import json
import os

from capflax.data.tokenizer import words

FILE = "scenes.json"
FORMAT = "capflax-scenes/1"
SHAPE, PLACE, RELATION = "shape", "place", "relation"
ATTRIBUTES = (SHAPE, "color", "size", PLACE)  # Of an object, in the order metrics list them.


class SceneFileError(ValueError):
  """A malformed scenes.json; the message names the file and key."""


@dataclasses.dataclass(frozen=True)
class Scene:
  objects: tuple[dict, ...]  # {attribute: value, ..., 'center': (x, y)}
  relations: frozenset[tuple[int, str, int]]


@dataclasses.dataclass(frozen=True)
class Truth:
  """What a scenes.json holds: the lexicon and every image's scene."""
  lexicon: dict[str, dict[str, tuple[str, ...]]]  # attribute or 'relation' -> value -> phrases
  scenes: dict[str, Scene]

  @property
  def attributes(self) -> tuple[str, ...]:
    """The object attributes the lexicon has words for."""
    return tuple(a for a in ATTRIBUTES if a in self.lexicon)


def to_json(lexicon: dict, scenes: dict[str, Scene]) -> dict:
  return {"format": FORMAT,
          "lexicon": {k: {v: list(p) for v, p in values.items()} for k, values in lexicon.items()},
          "images": {name: {"objects": [dict(o, center=list(o["center"])) for o in s.objects],
                            "relations": sorted(list(r) for r in s.relations)}
                     for name, s in scenes.items()}}


def write(path: str, lexicon: dict, scenes: dict[str, Scene]) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(to_json(lexicon, scenes), f, separators=(",", ":"))
  os.replace(tmp, path)


def read(data_dir: str) -> Truth | None:
  """The folder's scene truth, or None when it has no scenes.json."""
  path = os.path.join(data_dir, FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      raw = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise SceneFileError(f"{path}: not readable JSON ({e}).") from e
  return parse(raw, path)


def parse(raw, where: str) -> Truth:
  """Checks a scenes.json document; every error names `where` and the key."""
  def fail(key, msg):
    raise SceneFileError(f"{where}: {key}: {msg}")

  if not isinstance(raw, dict) or raw.get("format") != FORMAT:
    fail("format", f"expected {FORMAT!r}, got {raw.get('format') if isinstance(raw, dict) else raw!r}.")
  lex_raw = raw.get("lexicon")
  if not isinstance(lex_raw, dict) or SHAPE not in lex_raw:
    fail("lexicon", f"expected an object with at least {SHAPE!r}.")
  lexicon = {}
  for attr, values in lex_raw.items():
    if attr not in ATTRIBUTES + (RELATION,):
      fail(f"lexicon.{attr}", f"unknown attribute (known: {', '.join(ATTRIBUTES + (RELATION,))}).")
    if not isinstance(values, dict) or not values:
      fail(f"lexicon.{attr}", "expected a non-empty object VALUE -> [PHRASE, ...].")
    lexicon[attr] = {}
    for value, phrases in values.items():
      if (not isinstance(phrases, list) or not phrases
          or not all(isinstance(p, str) and words(p) for p in phrases)):
        fail(f"lexicon.{attr}.{value}", "expected a non-empty list of phrases with words.")
      lexicon[attr][value] = tuple(phrases)
  images = raw.get("images")
  if not isinstance(images, dict):
    fail("images", "expected an object FILENAME -> scene.")
  attributes = [a for a in ATTRIBUTES if a in lexicon]
  scenes = {}
  for name, scene in images.items():
    key = f"images.{name}"
    objects = scene.get("objects") if isinstance(scene, dict) else None
    if not isinstance(objects, list) or not objects:
      fail(f"{key}.objects", "expected a non-empty list.")
    for i, o in enumerate(objects):
      for attr in attributes:
        if not isinstance(o, dict) or o.get(attr) not in lexicon[attr]:
          fail(f"{key}.objects[{i}].{attr}",
               f"{o.get(attr) if isinstance(o, dict) else o!r} is not a value in lexicon.{attr}.")
    relations = set()
    for j, rel in enumerate(scene.get("relations", [])):
      if (not isinstance(rel, list) or len(rel) != 3 or rel[1] not in lexicon.get(RELATION, {})
          or not all(isinstance(x, int) and 0 <= x < len(objects) for x in (rel[0], rel[2]))):
        fail(f"{key}.relations[{j}]", f"expected [I, RELATION, J] with RELATION in "
             f"lexicon.relation and I, J object indices, got {rel!r}.")
      relations.add(tuple(rel))
    scenes[name] = Scene(tuple({**o, "center": tuple(o.get("center", ()))} for o in objects),
                         frozenset(relations))
  return Truth(lexicon, scenes)
