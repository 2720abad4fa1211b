"""Are the captions true? Parses captions with a scene set's own words and scores them.

A caption is read as object mentions: a run of attribute words (colour, size) ending in
a shape word is one object; a place phrase belongs to the object before it, unless that
one already has a place or a conjunction ('and', 'while', ...) stands between them, in
which case it belongs to the next object ('in the middle there is a red circle'); a
relation phrase joins the object before it to the next one. Words the lexicon does not
know are skipped; at each word the longest known phrase wins.

Mentions are then matched one to one with the true objects so as to agree on as many
attributes as possible (Hungarian matching). An attribute stated for a matched object is
right when it equals the truth; a mention with no object to match (more mentions than
objects) has every attribute wrong. Split-level numbers sum over captions:

  count_accuracy      captions mentioning exactly as many objects as the image has
  <attribute>_precision   right / stated, for shape, color, size, place (those the
                      lexicon has words for) and relation (only present when stated)
  object_precision    mentions with every attribute stated and right / mentions
  object_recall       true objects with such a mention / true objects
  parsed              captions with at least one mention
"""

import dataclasses
from collections.abc import Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from capflax.data.scene_file import PLACE, RELATION, SHAPE, Scene, SceneFileError, Truth
from capflax.data.tokenizer import words

CONJUNCTIONS = frozenset({"and", "while", "whereas", "but", "with", "then"})


@dataclasses.dataclass(frozen=True)
class Parsed:
  mentions: tuple[dict[str, str], ...]  # attribute -> value, what the caption states
  relations: tuple[tuple[int, str, int], ...]  # (mention, relation, mention)


class Parser:
  """Reads captions into mentions with one lexicon (attribute -> value -> phrases)."""

  def __init__(self, lexicon: Mapping[str, Mapping[str, tuple[str, ...]]]):
    self.phrases: dict[tuple[str, ...], tuple[str, str]] = {}
    for attr, values in lexicon.items():
      for value, phrases in values.items():
        for phrase in phrases:
          key = tuple(words(phrase))
          if self.phrases.get(key, (attr, value)) != (attr, value):
            other = self.phrases[key]
            raise SceneFileError(f"lexicon: {phrase!r} names both {attr}={value!r} and "
                                 f"{other[0]}={other[1]!r}.")
          self.phrases[key] = (attr, value)
    self.longest = max(map(len, self.phrases))

  def spans(self, caption: str) -> list[tuple[int, str, str]]:
    """(word index, attribute, value) of each known phrase, longest match first."""
    w, i, out = words(caption), 0, []
    while i < len(w):
      for n in range(min(self.longest, len(w) - i), 0, -1):
        hit = self.phrases.get(tuple(w[i:i + n]))
        if hit:
          out.append((i, *hit))
          i += n
          break
      else:
        if w[i] in CONJUNCTIONS:
          out.append((i, "conjunction", w[i]))
        i += 1
    return out

  def parse(self, caption: str) -> Parsed:
    mentions: list[dict[str, str]] = []
    relations: list[tuple[int, str, int]] = []
    adjectives: dict[str, str] = {}  # Stated before a shape word: for the next mention.
    place = None  # A place waiting for the next mention.
    relation = None  # (subject mention, relation) waiting for its object.
    joined = False  # A conjunction since the last mention.

    def settle_adjectives():  # 'a circle that is red': trailing words describe the last one.
      if mentions:
        for a, v in adjectives.items():
          mentions[-1].setdefault(a, v)
      adjectives.clear()

    for _, attr, value in self.spans(caption):
      if attr == "conjunction":
        joined = True
      elif attr == SHAPE:
        mentions.append(adjectives | {SHAPE: value})
        adjectives.clear()
        if place is not None:
          mentions[-1][PLACE], place = place, None
        if relation is not None:
          relations.append((relation[0], relation[1], len(mentions) - 1))
          relation = None
        joined = False
      elif attr == PLACE:
        settle_adjectives()
        if mentions and PLACE not in mentions[-1] and not joined and relation is None:
          mentions[-1][PLACE] = value
        else:
          place = value
      elif attr == RELATION:
        settle_adjectives()
        relation = (len(mentions) - 1, value) if mentions else None
      else:
        adjectives[attr] = value
    settle_adjectives()
    if place is not None and mentions and PLACE not in mentions[-1]:
      mentions[-1][PLACE] = place
    return Parsed(tuple(mentions), tuple(relations))


def score_caption(parsed: Parsed, scene: Scene, attributes: tuple[str, ...]) -> dict:
  """One caption against its scene: what each mention got right, and the tallies."""
  objects = scene.objects
  agree = np.array([[sum(m.get(a) == o[a] for a in attributes) for o in objects]
                    for m in parsed.mentions], np.int64).reshape(len(parsed.mentions),
                                                                 len(objects))
  rows, cols = linear_sum_assignment(agree, maximize=True)
  match = dict(zip(rows.tolist(), cols.tolist()))  # mention -> object
  mentions = []
  for k, m in enumerate(parsed.mentions):
    o = match.get(k)
    right = {a: o is not None and m[a] == objects[o][a] for a in attributes if a in m}
    whole = len(right) == len(attributes) and all(right.values())
    mentions.append({"said": dict(m), "object": o, "right": right, "whole": whole})
  relations = [{"said": list(r), "right": (r[0] in match and r[2] in match and
                                           (match[r[0]], r[1], match[r[2]]) in scene.relations)}
               for r in parsed.relations]
  return {"objects": len(objects), "count_right": len(parsed.mentions) == len(objects),
          "mentions": mentions, "relations": relations}


def score_split(captions: Mapping[str, str], truth: Truth) -> tuple[dict, dict[str, dict]]:
  """(split-level scores, filename -> per-image result) of generated captions."""
  missing = [name for name in captions if name not in truth.scenes]
  if missing:
    raise SceneFileError(f"scenes.json has no scene for {missing[0]}"
                         f"{f' (and {len(missing) - 1} more images)' if len(missing) > 1 else ''}.")
  parser, attributes = Parser(truth.lexicon), truth.attributes
  per_image = {name: score_caption(parser.parse(c), truth.scenes[name], attributes)
               for name, c in captions.items()}
  return summarise(per_image.values(), attributes), per_image


def summarise(results, attributes: tuple[str, ...]) -> dict:
  """Split-level numbers from per-caption results (see the module docstring)."""
  results = list(results)
  mentions = [m for r in results for m in r["mentions"]]
  relations = [rel for r in results for rel in r["relations"]]
  objects = sum(r["objects"] for r in results)
  whole = sum(m["whole"] for m in mentions)
  out = {"count_accuracy": float(np.mean([r["count_right"] for r in results]))}
  for a in attributes:
    stated = [m["right"][a] for m in mentions if a in m["right"]]
    out[f"{a}_precision"] = float(np.mean(stated)) if stated else 0.0
  if relations:
    out["relation_precision"] = float(np.mean([rel["right"] for rel in relations]))
  out["object_precision"] = whole / len(mentions) if mentions else 0.0
  out["object_recall"] = whole / objects if objects else 0.0
  out["parsed"] = float(np.mean([bool(r["mentions"]) for r in results]))
  return out
