"""ROUGE-L against pycocoevalcap (the independent reference) and against a hand-derived LCS."""

import pytest
from pycocoevalcap.rouge.rouge import Rouge

from capflax.metrics.rouge import rouge_l
from tests.metrics.pycoco import assert_matches_reference, word_salad

LONG = " ".join(f"w{i % 23}" for i in range(70))  # > 64 tokens: the Python-int LCS path

# (hypothesis, references)
CASES = [
    ("zebra quantum physics", ["a dog runs on the grass", "the dog is running"]),  # no shared word
    ("a dog runs on the grass", ["a dog runs on the grass", "a brown dog outside"]),  # identical
    ("the the the the the dog", ["the dog and the cat", "a dog"]),  # repeated words
    ("dog", ["a dog runs on the grass", "dog", "the dog"]),  # one word
    ("a dog runs", ["a big dog runs on the green grass today"]),  # shorter
    ("a dog runs on the grass in the park near an old tree", ["a dog runs"]),  # longer
    ("a man rides a bike", ["a man", "a man rides", "man on bike", "a man rides a red bike",
                            "a person is riding", "a man riding a bike down a hill", "bike"]),
    ("a  dog ", ["a dog", " a  dog"]),  # split(" ") keeps empty tokens, and they match
    ("", ["an empty hypothesis", ""]),
    (LONG, [LONG[: len(LONG) // 2], "w1 w2 w3", LONG]),
    (" ".join(LONG.split()[:64]), [LONG, "w0 w5 w7"]),  # exactly 64 tokens: all bits in use
    ("w3 w1 w2", [LONG]),  # long reference, short hypothesis
]


def test_matches_pycocoevalcap_on_edge_cases():
  assert_matches_reference(rouge_l, Rouge(), *zip(*CASES))


def test_matches_pycocoevalcap_on_random_word_salad():
  """Small vocabularies make many ties and repeats, the cases where an LCS goes wrong."""
  hyps, refs = word_salad(0, "abcde", 80, 60, 6)
  assert_matches_reference(rouge_l, Rouge(), hyps, refs)


def test_value_derived_by_hand():
  # LCS("a b c d", "a x c d e") = 3 ("a c d"): P = 3/4, R = 3/5, beta^2 = 1.44,
  # F = (1 + 1.44) * 0.75 * 0.6 / (0.6 + 1.44 * 0.75) = 1.098 / 1.68.
  mean, _ = rouge_l(["a b c d"], [["a x c d e"]])
  assert mean == pytest.approx(1.098 / 1.68, abs=1e-12)
  # P and R are maxed separately over references: P = 1 from "a b c d e", R = 1 from "a".
  # F = 2.44 * 1 * 1 / (1 + 1.44) = 1, though no single reference gives 1.
  mean, _ = rouge_l(["a"], [["a b c d e", "a"]])
  assert mean == pytest.approx(1.0, abs=1e-12)
