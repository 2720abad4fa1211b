"""The scene scorer on hand-written captions: exact numbers counted by hand."""

import pytest

from capflax.data import scene_file
from capflax.metrics import scene

LEXICON = {
    "shape": {"circle": ("circle", "disc"), "square": ("square",), "oval": ("oval",)},
    "color": {"red": ("red",), "blue": ("blue", "navy")},
    "size": {"small": ("small", "tiny"), "large": ("large", "big")},
    "place": {"top left": ("in the top left corner", "at the top left"),
              "middle": ("in the middle",), "left": ("on the left",)},
    "relation": {"left of": ("to the left of",), "right of": ("to the right of",),
                 "above": ("above",)},
}
# A small red circle at the top left, to the left of a large blue square in the middle.
SCENE = scene_file.Scene(
    ({"shape": "circle", "color": "red", "size": "small", "place": "top left"},
     {"shape": "square", "color": "blue", "size": "large", "place": "middle"}),
    frozenset({(0, "left of", 1), (1, "right of", 0)}))
RIGHT = "A tiny red disc in the top left corner is to the left of a big blue square in the middle."
PARTLY = "A large blue oval on the left"
UNPARSEABLE = "a picture of nothing much"
PLACE_FIRST = "In the middle there is a big square, and at the top left a small circle that is red"
TOO_MANY = "a red circle above a blue square and a red square"
ATTRIBUTES = ("shape", "color", "size", "place")


def _score(caption):
  return scene.score_caption(scene.Parser(LEXICON).parse(caption), SCENE, ATTRIBUTES)


def test_parser_reads_mentions_places_and_relations():
  parser = scene.Parser(LEXICON)
  assert parser.parse(RIGHT) == scene.Parsed(
      ({"size": "small", "color": "red", "shape": "circle", "place": "top left"},
       {"size": "large", "color": "blue", "shape": "square", "place": "middle"}),
      ((0, "left of", 1),))
  # A place before its object; a conjunction hands the next place on; trailing colour.
  assert parser.parse(PLACE_FIRST).mentions == (
      {"size": "large", "shape": "square", "place": "middle"},
      {"size": "small", "shape": "circle", "place": "top left", "color": "red"})
  assert parser.parse(UNPARSEABLE) == scene.Parsed((), ())


def test_a_true_caption_is_right_everywhere():
  r = _score(RIGHT)
  assert r["count_right"] and [m["whole"] for m in r["mentions"]] == [True, True]
  assert [m["object"] for m in r["mentions"]] == [0, 1]
  assert r["relations"] == [{"said": [0, "left of", 1], "right": True}]


def test_a_partly_right_caption_is_matched_to_the_object_it_agrees_with_most():
  r = _score(PARTLY)  # Agrees with the square on colour and size, with the circle on nothing.
  assert not r["count_right"]
  assert r["mentions"] == [{"said": {"size": "large", "color": "blue", "shape": "oval",
                                     "place": "left"}, "object": 1, "whole": False,
                            "right": {"size": True, "color": True, "shape": False,
                                      "place": False}}]


def test_an_extra_mention_is_wrong_in_everything_it_says():
  r = _score(TOO_MANY)
  assert [m["object"] for m in r["mentions"]] == [0, 1, None]
  assert r["mentions"][2]["right"] == {"color": False, "shape": False}
  assert r["relations"] == [{"said": [0, "above", 1], "right": False}]


def test_split_numbers_counted_by_hand():
  truth = scene_file.Truth({k: dict(v) for k, v in LEXICON.items()},
                           {n: SCENE for n in "abcde"})
  captions = dict(zip("abcde", (RIGHT, PARTLY, UNPARSEABLE, PLACE_FIRST, TOO_MANY)))
  scores, per_image = scene.score_split(captions, truth)
  assert scores == pytest.approx({
      "count_accuracy": 2 / 5,  # RIGHT and PLACE_FIRST name two objects
      "shape_precision": 6 / 8,  # 2 + 0 + 2 + 2 of 2 + 1 + 2 + 3
      "color_precision": 6 / 7,  # 2 + 1 + 1 + 2 of 2 + 1 + 1 + 3
      "size_precision": 5 / 5,
      "place_precision": 4 / 5,  # PARTLY's 'on the left' is wrong
      "relation_precision": 1 / 2,  # RIGHT's holds, TOO_MANY's 'above' does not
      "object_precision": 3 / 8,  # both of RIGHT, PLACE_FIRST's circle; of 8 mentions
      "object_recall": 3 / 10,  # of 5 images x 2 objects
      "parsed": 4 / 5})
  assert per_image["a"] == _score(RIGHT)


def test_images_without_truth_are_named():
  truth = scene_file.Truth({k: dict(v) for k, v in LEXICON.items()}, {"a": SCENE})
  with pytest.raises(scene_file.SceneFileError, match="no scene for b.jpg"):
    scene.score_split({"a": RIGHT, "b.jpg": RIGHT}, truth)


def test_a_phrase_naming_two_values_is_refused():
  with pytest.raises(scene_file.SceneFileError, match="'navy' names both"):
    scene.Parser(LEXICON | {"shape": {"navy": ("navy",)}})


def test_attributes_missing_from_the_lexicon_are_not_scored():
  lexicon = {"shape": {"circle": ("circle",)}, "place": {"middle": ("in the middle",)}}
  truth = scene_file.parse({"format": scene_file.FORMAT, "lexicon": {
      k: {v: list(p) for v, p in d.items()} for k, d in lexicon.items()},
      "images": {"a": {"objects": [{"shape": "circle", "place": "middle"}]}}}, "x")
  scores, _ = scene.score_split({"a": "a red circle in the middle"}, truth)
  assert set(scores) == {"count_accuracy", "shape_precision", "place_precision",
                         "object_precision", "object_recall", "parsed"}
  assert scores["object_recall"] == 1.0
