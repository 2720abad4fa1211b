"""scenes.json: written and read back; malformed ones named by file and key."""

import json

import pytest

from capflax.data import scene_file

GOOD = {"format": "capflax-scenes/1",
        "lexicon": {"shape": {"circle": ["circle"]}, "color": {"red": ["red"]},
                    "relation": {"left of": ["left of"]}},
        "images": {"a.jpg": {"objects": [{"shape": "circle", "color": "red", "center": [0.2, 0.5]},
                                         {"shape": "circle", "color": "red"}],
                             "relations": [[0, "left of", 1]]}}}


def test_round_trip(tmp_path):
  truth = scene_file.parse(GOOD, "x")
  scene_file.write(str(tmp_path / scene_file.FILE), truth.lexicon, truth.scenes)
  again = scene_file.read(str(tmp_path))
  assert again == truth and truth.attributes == ("shape", "color")
  assert again.scenes["a.jpg"].relations == frozenset({(0, "left of", 1)})
  assert scene_file.read(str(tmp_path / "missing")) is None


@pytest.mark.parametrize("edit, key", [
    (lambda d: d.update(format="v0"), "format"),
    (lambda d: d["lexicon"].pop("shape"), "lexicon"),
    (lambda d: d["lexicon"].update(texture={"x": ["x"]}), "lexicon.texture"),
    (lambda d: d["lexicon"]["color"].update(blue=[]), "lexicon.color.blue"),
    (lambda d: d["images"]["a.jpg"]["objects"][1].update(color="green"),
     r"images.a.jpg.objects\[1\].color"),
    (lambda d: d["images"]["a.jpg"].update(relations=[[0, "left of", 2]]),
     r"images.a.jpg.relations\[0\]"),
    (lambda d: d["images"]["a.jpg"].update(objects=[]), "images.a.jpg.objects"),
])
def test_malformed_files_name_the_key(tmp_path, edit, key):
  doc = json.loads(json.dumps(GOOD))
  edit(doc)
  (tmp_path / scene_file.FILE).write_text(json.dumps(doc))
  with pytest.raises(scene_file.SceneFileError, match=f"scenes.json: {key}: "):
    scene_file.read(str(tmp_path))


def test_broken_json_is_named(tmp_path):
  (tmp_path / scene_file.FILE).write_text("{")
  with pytest.raises(scene_file.SceneFileError, match="scenes.json: not readable JSON"):
    scene_file.read(str(tmp_path))
