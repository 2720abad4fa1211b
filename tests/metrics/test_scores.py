"""compute_scores: input checks, and agreement with pycocoevalcap on real Flickr8k captions.

The per-image scores of each metric are checked on real text here too, since this is where
the captions file is read; the per-metric files cover the hand-made edge cases.
"""

import csv
import functools
import re

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from capflax.metrics import compute_scores
from capflax.metrics.scores import image_scores
from capflax.metrics.bleu import bleu
from capflax.metrics.cider import cider_d
from capflax.metrics.rouge import rouge_l
from tests.conftest import flickr8k_captions_csv

_NOT_WORD = re.compile(r"[^\w ]|_")  # anything but a letter, digit or space


@functools.cache
def _flickr_captions() -> tuple[tuple[str, ...], ...]:
  """Captions of each image, in file order: lowercased, punctuation -> space, single-spaced."""
  by_image = {}
  with flickr8k_captions_csv() as f:
    for row in csv.DictReader(f):
      words = _NOT_WORD.sub(" ", row["caption"].lower()).split()
      by_image.setdefault(row["image"], []).append(" ".join(words))
  return tuple(tuple(captions) for captions in by_image.values())


def leave_one_out(num_images: int | None, i: int) -> tuple[dict, dict]:
  """Caption i of each image as the hypothesis, the other captions as its references."""
  images = _flickr_captions()[:num_images]
  hyps = {k: captions[i] for k, captions in enumerate(images)}
  refs = {k: list(captions[:i] + captions[i + 1 :]) for k, captions in enumerate(images)}
  return hyps, refs


def pycoco_scores(hyps: dict, refs: dict) -> dict:
  """The same dict as compute_scores, from pycocoevalcap, plus its per-image arrays."""
  res = {k: [h] for k, h in hyps.items()}
  bleus, bleu_per_image = Bleu(4).compute_score(refs, res, verbose=0)
  rouge, rouge_per_image = Rouge().compute_score(refs, res)
  cider, cider_per_image = Cider().compute_score(refs, res)
  scores = {f"bleu{k + 1}": b for k, b in enumerate(bleus)} | {"rouge_l": rouge, "cider_d": cider}
  per_image = {"bleu": np.array(bleu_per_image), "rouge_l": rouge_per_image}
  return scores | {"per_image": per_image | {"cider_d": cider_per_image}}


def assert_same_scores(got: dict, want: dict) -> None:
  for name in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider_d"):
    assert type(got[name]) is float, name
    assert got[name] == pytest.approx(want[name], abs=1e-9), name


@pytest.mark.parametrize("i", [0, 3])
def test_matches_pycocoevalcap_on_300_flickr8k_images(i):
  hyps, refs = leave_one_out(300, i)
  want = pycoco_scores(hyps, refs)
  got = compute_scores(hyps, refs)
  assert_same_scores(got, want)
  assert got["num_images"] == 300

  keys = list(hyps)
  hyp_list, ref_list = [hyps[k] for k in keys], [refs[k] for k in keys]
  want = want["per_image"]
  np.testing.assert_allclose(bleu(hyp_list, ref_list)[1], want["bleu"], rtol=0, atol=1e-9)
  np.testing.assert_allclose(rouge_l(hyp_list, ref_list)[1], want["rouge_l"], rtol=0, atol=1e-9)
  np.testing.assert_allclose(cider_d(hyp_list, ref_list)[1], want["cider_d"], rtol=0, atol=1e-9)


def test_matches_pycocoevalcap_on_1000_flickr8k_images():
  """1000 rather than all 8091 images: pycocoevalcap needs ~6 s for the whole file."""
  hyps, refs = leave_one_out(1000, 1)
  assert_same_scores(compute_scores(hyps, refs), pycoco_scores(hyps, refs))


def test_image_scores_are_pycocoevalcaps_per_image_lists_and_average_to_the_corpus():
  hyps, refs = leave_one_out(200, 2)
  got = image_scores(hyps, refs)
  want = pycoco_scores(hyps, refs)
  assert list(got) == list(hyps)
  np.testing.assert_allclose([got[k]["cider_d"] for k in hyps], want["per_image"]["cider_d"],
                             rtol=0, atol=1e-9)
  np.testing.assert_allclose([got[k]["bleu4"] for k in hyps], want["per_image"]["bleu"][3],
                             rtol=0, atol=1e-9)
  # The corpus CIDEr-D is the mean of the per-image values (idf from the whole set).
  assert np.mean([v["cider_d"] for v in got.values()]) == pytest.approx(
      compute_scores(hyps, refs)["cider_d"], abs=1e-12)
  # Scored alone, an image gets another CIDEr-D (its idf changes): the set matters.
  key = next(iter(hyps))
  alone = image_scores({key: hyps[key]}, {key: refs[key]})[key]
  assert alone["cider_d"] != pytest.approx(got[key]["cider_d"])
  assert alone["bleu4"] == pytest.approx(got[key]["bleu4"], abs=1e-12)


def test_irregular_spacing_is_split_like_coco_caption():
  """ROUGE-L splits on " " (empty tokens count), BLEU and CIDEr-D on any whitespace."""
  hyps = {"a": "a  dog runs ", "b": "a cat\tsits", "c": "", "d": "two dogs"}
  refs = {"a": ["a dog runs", " a  dog"], "b": ["a cat sits", "cat"], "c": ["x"],
          "d": ["two  dogs"]}
  assert_same_scores(compute_scores(hyps, refs), pycoco_scores(hyps, refs))


def test_keys_need_not_be_ordered_alike():
  hyps = {"x": "a dog runs", "y": "a cat sits on a mat"}
  refs = {"y": ["a cat on a mat", "cat sits"], "x": ["a dog is running"]}
  assert_same_scores(compute_scores(hyps, refs), pycoco_scores(hyps, refs))


@pytest.mark.parametrize(
    "hyps, refs, message",
    [
        ({"a": "x", "b": "y"}, {"a": ["x"]}, "'b' has no references"),
        ({"a": "x"}, {"a": ["x"], "c": ["y"]}, "'c' has no hypothesis"),
        ({"a": "x"}, {"a": []}, "references for key 'a'"),
        ({"a": "x"}, {"a": "x"}, "references for key 'a'"),
        ({"a": ["x"]}, {"a": ["x"]}, "hypothesis for key 'a' must be a str"),
        ({}, {}, "no hypotheses"),
    ],
)
def test_rejects_mismatched_inputs(hyps, refs, message):
  with pytest.raises(ValueError, match=message) as error:
    compute_scores(hyps, refs)
  assert "\n" not in str(error.value)


def test_raw_text_pipeline_matches_coco_caption_with_its_tokenizer_and_meteor():
  """Raw Flickr8k captions, leave-one-out: PTB tokenisation + every metric as coco-caption."""
  import shutil
  from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
  from capflax.metrics.coco import coco_scores
  by_image = {}
  with flickr8k_captions_csv() as f:
    for row in csv.DictReader(f):
      by_image.setdefault(row["image"], []).append(row["caption"])
  images = list(by_image)[:100]
  hyps = {k: by_image[k][2] for k in images}
  refs = {k: by_image[k][:2] + by_image[k][3:] for k in images}
  java = shutil.which("java") is not None
  got = coco_scores(hyps, refs, with_meteor=java)
  if java:
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in refs[k]] for k in images})
    res = tokenizer.tokenize({k: [{"caption": hyps[k]}] for k in images})
  else:  # Our tokenisation, checked against the Java one in test_ptb.py.
    from capflax.metrics.ptb import tokenize
    gts = {k: [tokenize(c) for c in refs[k]] for k in images}
    res = {k: [tokenize(hyps[k])] for k in images}
  want = pycoco_scores({k: v[0] for k, v in res.items()}, gts)
  for name in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider_d"):
    assert got[name] == pytest.approx(want[name], abs=1e-6), name
  if java:  # The official jar on the Java tokenizer's output vs ours on our tokenisation.
    from capflax.metrics.coco import meteor_scorer
    assert got["meteor"] == pytest.approx(meteor_scorer().compute_score(gts, res)[0], abs=1e-6)
    assert 0.1 < got["meteor"] < 0.6
