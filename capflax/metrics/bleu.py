"""BLEU-1..4 exactly as coco-caption's `BleuScorer.compute_score(option='closest')`.

Same numbers as pycocoevalcap (corpus and per-image), computed from the n-gram counts of
`ngrams.py`.
"""

import math
from collections.abc import Sequence

import numpy as np

from capflax.metrics.ngrams import Layout, NGrams, count_ngrams, word_ids

# coco-caption's smoothing: a zero match count gives ~0 instead of 0/0.
_TINY = 1e-15
_SMALL = 1e-9


def bleu_from_ngrams(
    ngrams: list[NGrams], lengths: np.ndarray, layout: Layout
) -> tuple[list[float], np.ndarray]:
  """([4] corpus BLEU-1..4, [4, N] per-image) from `count_ngrams` of the `layout` sentences."""
  n, num_images = len(ngrams), len(layout.hyp)
  hyp_len, ref_len = lengths[layout.hyp], lengths[layout.ref]  # [N], [R]

  # 'closest' reference length: min over (|ref_len - hyp_len|, ref_len), so ties go short.
  scale = int(ref_len.max()) + 1
  dist = np.abs(ref_len - hyp_len[layout.ref_image])  # [R]
  closest_len = np.minimum.reduceat(dist * scale + ref_len, layout.first_ref) % scale  # [N]

  # Matches clipped to each n-gram's max count in any one reference of the image.
  correct = np.zeros((n, num_images), np.int64)  # [n, N]
  for k, g in enumerate(ngrams):
    first = g.group_start  # [G]
    hyp_count = np.where(layout.is_hyp[g.sent[first]], g.count[first], 0)  # [G]
    ref_max = np.maximum.reduceat(np.where(layout.is_hyp[g.sent], 0, g.count), first)  # [G]
    image = layout.image[g.sent[first]]  # [G]
    correct[k] = np.bincount(image, np.minimum(hyp_count, ref_max), minlength=num_images)
  guess = np.maximum(0, hyp_len[None, :] - np.arange(n)[:, None])  # [n, N]

  per_image = np.empty((n, num_images))  # [n, N]
  product = np.ones(num_images)
  for k in range(n):
    product = product * ((correct[k] + _TINY) / (guess[k] + _SMALL))
    per_image[k] = product ** (1.0 / (k + 1))
  ratio = (hyp_len + _TINY) / (closest_len + _SMALL)  # [N]
  per_image *= np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)  # brevity penalty

  corpus, product = [], 1.0
  for k in range(n):
    product *= (int(correct[k].sum()) + _TINY) / (int(guess[k].sum()) + _SMALL)
    corpus.append(product ** (1.0 / (k + 1)))
  ratio = (int(hyp_len.sum()) + _TINY) / (int(closest_len.sum()) + _SMALL)
  if ratio < 1:
    corpus = [b * math.exp(1 - 1 / ratio) for b in corpus]
  return corpus, per_image


def bleu(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]]
) -> tuple[list[float], np.ndarray]:
  """([4] corpus BLEU-1..4, [4, N] per-image); hypotheses[i] is scored against references[i]."""
  layout = Layout.of(references)
  tokens, lengths = word_ids([s.split() for s in Layout.flatten(hypotheses, references)])
  return bleu_from_ngrams(count_ngrams(tokens, lengths, layout), lengths, layout)
