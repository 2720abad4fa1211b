"""ROUGE-L exactly as coco-caption's `Rouge` (beta 1.2, mean over images).

Per image: LCS with every reference, precision = max LCS / hypothesis length, recall = max
over references of LCS / reference length, F = (1 + b^2) P R / (R + b^2 P). Tokens come
from `str.split(" ")` as coco-caption does, so double spaces make empty-string tokens. The
LCS runs bit-parallel (Hyyro 2004) on one uint64 per pair, all pairs at once, instead of a
Python DP table per pair.
"""

from collections.abc import Sequence

import numpy as np

from capflax.metrics.ngrams import Layout, word_ids

_BITS = 64  # hypotheses up to this many tokens take the vectorised path


def _lcs_python(a: list[int], b: list[int]) -> int:
  """The same bit-parallel LCS on a Python int, for hypotheses longer than 64 tokens."""
  masks = {}
  for i, token in enumerate(a):
    masks[token] = masks.get(token, 0) | (1 << i)
  full = (1 << len(a)) - 1
  v = full
  for token in b:
    u = v & masks.get(token, 0)
    v = (v + u) | (v - u)
  return len(a) - (v & full).bit_count()


def lcs_lengths(tokens: np.ndarray, lengths: np.ndarray, layout: Layout) -> np.ndarray:
  """[R] LCS length of each reference with its image's hypothesis.

  v holds one row of the LCS DP table, one bit per hypothesis token: bit i is 0 iff the row
  steps up at token i. Each reference token updates the whole row with one add, the carry
  doing the DP's max propagation; `match` says which hypothesis tokens equal it.
  """
  sent_start = np.cumsum(lengths) - lengths  # [S]
  sent_of = np.repeat(np.arange(len(lengths)), lengths)  # [T]
  position = np.arange(len(tokens)) - sent_start[sent_of]  # [T] index within the sentence
  image, is_hyp = layout.image[sent_of], layout.is_hyp[sent_of]  # [T], [T]
  width = int(tokens.max(initial=0)) + 1

  # [K] distinct (image, word) of short hypotheses -> bit mask of the positions holding it.
  short_hyp = is_hyp & (lengths[sent_of] <= _BITS)
  keys = image[short_hyp] * width + tokens[short_hyp]
  order = np.argsort(keys, kind="stable")
  keys, bits = keys[order], (np.uint64(1) << position[short_hyp].astype(np.uint64))[order]
  first = np.flatnonzero(np.diff(keys, prepend=-1) != 0)
  keys = np.append(keys[first], np.iinfo(np.int64).max)  # [K + 1]; sentinel for searchsorted
  masks = np.append(np.bitwise_or.reduceat(bits, first), np.uint64(0))  # [K + 1]

  # [L, R] per reference token: mask of the matching hypothesis tokens (0 past the end).
  ref_keys = image[~is_hyp] * width + tokens[~is_hyp]  # [T_ref]
  at = np.searchsorted(keys, ref_keys)
  ref_len = lengths[layout.ref]  # [R]
  match = np.zeros((int(ref_len.max(initial=0)), len(ref_len)), np.uint64)  # [L, R]
  valid = np.arange(len(match)) < ref_len[:, None]  # [R, L]
  match.T[valid] = np.where(keys[at] == ref_keys, masks[at], 0)

  v = np.full(len(ref_len), np.iinfo(np.uint64).max, np.uint64)  # [R]
  for j in range(len(match)):
    u = v & match[j]
    v = (v + u) | (v - u)  # uint64 wrap-around only drops carries above bit 63
  hyp_len = lengths[layout.hyp][layout.ref_image]  # [R]
  low = np.iinfo(np.uint64).max >> (_BITS - np.minimum(hyp_len, _BITS)).astype(np.uint64)  # [R]
  lcs = np.bitwise_count(~v & low).astype(np.int64)  # [R]

  def words(s):
    return tokens[sent_start[s] : sent_start[s] + lengths[s]].tolist()

  for r in np.flatnonzero(hyp_len > _BITS):  # rare: Python-int bit-parallel, any length
    lcs[r] = _lcs_python(words(layout.hyp[layout.ref_image[r]]), words(layout.ref[r]))
  return lcs


def rouge_from_ids(
    tokens: np.ndarray, lengths: np.ndarray, layout: Layout, beta: float = 1.2
) -> tuple[float, np.ndarray]:
  """(mean ROUGE-L, [N] per-image) from `word_ids` of the `layout` sentences split on " "."""
  lcs = lcs_lengths(tokens, lengths, layout)  # [R]
  hyp_len, ref_len = lengths[layout.hyp][layout.ref_image], lengths[layout.ref]  # [R], [R]
  precision = np.maximum.reduceat(lcs / hyp_len, layout.first_ref)  # [N]
  recall = np.maximum.reduceat(lcs / ref_len, layout.first_ref)  # [N]
  both = (precision != 0) & (recall != 0)
  denominator = np.where(both, recall + beta**2 * precision, 1.0)  # [N]
  per_image = np.where(both, ((1 + beta**2) * precision * recall) / denominator, 0.0)  # [N]
  return float(np.mean(per_image)), per_image


def rouge_l(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]]
) -> tuple[float, np.ndarray]:
  """(mean ROUGE-L, [N] per-image); hypotheses[i] is scored against references[i]."""
  layout = Layout.of(references)
  tokens, lengths = word_ids([s.split(" ") for s in Layout.flatten(hypotheses, references)])
  return rouge_from_ids(tokens, lengths, layout)
