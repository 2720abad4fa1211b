"""BLEU against pycocoevalcap (the independent reference) and against values derived by hand."""

import math

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu

from capflax.metrics import ngrams
from capflax.metrics.bleu import bleu
from tests.metrics.pycoco import assert_matches_reference

# (hypothesis, references): edge cases for clipping, brevity and the 'closest' length.
CASES = [
    ("zebra quantum physics", ["a dog runs on the grass", "the dog is running"]),  # no shared word
    ("a dog runs on the grass", ["a dog runs on the grass", "a brown dog outside"]),  # identical
    ("the the the the the dog", ["the dog and the cat", "a dog"]),  # clipping of "the"
    ("a dog a dog a dog", ["a dog and a cat", "a dog"]),  # clipping of a bigram
    ("dog", ["a dog runs on the grass", "dog", "the dog"]),  # one word
    ("a dog runs", ["a big dog runs on the green grass today"]),  # shorter: brevity penalty
    ("a dog runs on the grass in the park near an old tree", ["a dog runs"]),  # longer
    ("one two three four", ["one two three", "one two three four five"]),  # closest tie -> 3
    ("a man rides a bike", ["a man", "a man rides", "man on bike", "a man rides a red bike",
                            "a person is riding", "a man riding a bike down a hill", "bike"]),
    ("", ["an empty hypothesis"]),
    ("a cat", [""]),  # an empty reference
]


def test_matches_pycocoevalcap_on_edge_cases():
  assert_matches_reference(bleu, Bleu(4), *zip(*CASES))


@pytest.mark.parametrize("case", range(len(CASES)))
def test_matches_pycocoevalcap_on_each_case_alone(case):
  """Alone, each case is also the whole corpus, so the corpus brevity penalty is its own."""
  hyp, refs = CASES[case]
  assert_matches_reference(bleu, Bleu(4), [hyp], [refs])


def test_values_derived_by_hand():
  # "the" x4 against "the cat": clipped unigram matches 1 of 4 -> BLEU-1 = 1/4, no brevity
  # penalty (4 words > 2); up to the 1e-15 / 1e-9 smoothing.
  corpus, _ = bleu(["the the the the"], [["the cat"]])
  assert corpus[0] == pytest.approx(0.25, abs=1e-9)
  assert corpus[1] < 1e-7  # no bigram matches: only the smoothing is left
  # "cat sat" against "the cat sat on": p1 = p2 = 1, length ratio 2/4 -> BP = exp(1 - 2).
  # No trigram exists, so coco's smoothing makes p3 = 1e-15 / 1e-9 = 1e-6, not 0:
  # BLEU-3 = (1 * 1 * 1e-6) ** (1/3) * BP = 0.01 / e.
  corpus, _ = bleu(["cat sat"], [["the cat sat on"]])
  assert corpus[0] == pytest.approx(math.exp(-1), abs=1e-9)
  assert corpus[1] == pytest.approx(math.exp(-1), abs=1e-9)
  assert corpus[2] == pytest.approx(0.01 * math.exp(-1), abs=1e-9)
  # An exact match of a 4+ word caption: every precision 1, no penalty.
  corpus, _ = bleu(["a dog on grass"], [["a dog on grass", "something else"]])
  np.testing.assert_allclose(corpus, 1.0, atol=1e-9)


def test_unpacked_sort_fallback_gives_the_same_counts(monkeypatch):
  """Keys too large for one packed int64 take the argsort path; it must count the same."""
  hyps, refs = zip(*CASES)
  want = bleu(hyps, refs)
  monkeypatch.setattr(ngrams, "_MAX_PACKED_KEY", 0)
  got = bleu(hyps, refs)
  np.testing.assert_array_equal(got[0], want[0])
  np.testing.assert_array_equal(got[1], want[1])


def test_rejects_missing_references():
  with pytest.raises(ValueError, match="image 1 has no references"):
    bleu(["a", "b"], [["a"], []])
  with pytest.raises(ValueError, match="bare string"):
    bleu(["a"], ["a"])
