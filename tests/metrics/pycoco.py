"""pycocoevalcap, the independent reference every metric test compares against."""

import numpy as np


def reference_scores(scorer, hyps, refs):
  """(corpus, per-image) of a pycocoevalcap scorer on aligned hypothesis/reference lists."""
  gts = {i: list(r) for i, r in enumerate(refs)}
  res = {i: [h] for i, h in enumerate(hyps)}
  kwargs = {"verbose": 0} if type(scorer).__name__ == "Bleu" else {}
  corpus, per_image = scorer.compute_score(gts, res, **kwargs)
  return np.array(corpus), np.array(per_image)


def word_salad(seed: int, letters: str, max_words: int, count: int, max_refs: int):
  """Random sentences over a tiny vocabulary: many shared n-grams, ties and repeats."""
  rng = np.random.default_rng(seed)

  def sentence():
    return " ".join(rng.choice(list(letters), rng.integers(1, max_words)))

  hyps = [sentence() for _ in range(count)]
  return hyps, [[sentence() for _ in range(rng.integers(1, max_refs))] for _ in hyps]


def assert_matches_reference(ours, scorer, hyps, refs):
  """Our (corpus, per-image) equals pycocoevalcap's to 1e-9."""
  corpus, per_image = ours(hyps, refs)
  want_corpus, want_per_image = reference_scores(scorer, hyps, refs)
  assert np.shape(per_image) == np.shape(want_per_image)
  np.testing.assert_allclose(corpus, want_corpus, rtol=0, atol=1e-9)
  np.testing.assert_allclose(per_image, want_per_image, rtol=0, atol=1e-9)
