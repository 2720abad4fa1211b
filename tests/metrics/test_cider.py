"""CIDEr-D against pycocoevalcap (the independent reference) and against a hand-derived value."""

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider

from capflax.metrics.cider import cider_d
from tests.metrics.pycoco import assert_matches_reference, word_salad

# (hypothesis, references); document frequencies come from all of them together.
CASES = [
    ("zebra quantum physics", ["a dog runs on the grass", "the dog is running"]),  # no shared word
    ("a dog runs on the grass", ["a dog runs on the grass", "a brown dog outside"]),  # identical
    ("the the the the the dog", ["the dog and the cat", "a dog"]),  # clipping of "the"
    ("a dog a dog a dog", ["a dog and a cat", "a dog"]),  # clipping of a bigram
    ("dog", ["a dog runs on the grass", "dog", "the dog"]),  # one word: zero bigrams
    ("a dog runs", ["a big dog runs on the green grass today"]),  # shorter: length penalty
    ("a dog runs on the grass in the park near an old tree", ["a dog runs"]),  # longer
    ("a man rides a bike", ["a man", "a man rides", "man on bike", "a man rides a red bike",
                            "a person is riding", "a man riding a bike down a hill", "bike"]),
    ("a dog runs on the grass", ["a dog runs on the grass"]),  # same n-grams as case 1: df = 2
    ("", ["an empty hypothesis"]),
    ("a cat", [""]),  # an empty reference
]


def test_matches_pycocoevalcap_on_edge_cases():
  assert_matches_reference(cider_d, Cider(), *zip(*CASES))


def test_matches_pycocoevalcap_on_random_word_salad():
  """Small vocabularies make n-grams shared across images, so df and clipping matter."""
  hyps, refs = word_salad(1, "abcdef", 15, 80, 7)
  assert_matches_reference(cider_d, Cider(), hyps, refs)


def test_value_derived_by_hand():
  # Two images, so idf = log(2) - log(df). Image 0: "a b" vs reference "a b": its 1- and
  # 2-gram tf-idf vectors equal the reference's -> cosine 1 for n = 1, 2; no 3- or 4-grams ->
  # 0; equal lengths -> penalty 1. Score = mean(1, 1, 0, 0) / 1 reference * 10 = 5.
  # Image 1: "c" vs "d" shares nothing -> 0. Corpus = 2.5.
  corpus, per_image = cider_d(["a b", "c"], [["a b"], ["d"]])
  np.testing.assert_allclose(per_image, [5.0, 0.0], atol=1e-12)
  assert corpus == pytest.approx(2.5, abs=1e-12)
  # One image: idf = log(1) - log(1) = 0 for every n-gram, so CIDEr-D is 0 even for a match.
  corpus, _ = cider_d(["a b"], [["a b"]])
  assert corpus == 0.0
