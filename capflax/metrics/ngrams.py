"""Sentences as integer word ids and n-gram counts: the shared input of every metric.

Words and n-grams are interned to integer ids and counted with array ops instead of one
Python dict per sentence, so `compute_scores` tokenises and counts only once.
"""

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np

_MAX_PACKED_KEY = 2**63 - 1  # (pair, position) packed in an int64 sort key up to this


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where each image's sentences sit in one flat list: [hyp_0, refs_0.., hyp_1, refs_1..].

  Image-major, so sorting by sentence index also groups by image, hypothesis first.
  """

  num_refs: np.ndarray  # [N] references per image
  hyp: np.ndarray  # [N] sentence index of each image's hypothesis
  ref: np.ndarray  # [R] sentence index of each reference
  ref_image: np.ndarray  # [R] image of each reference
  first_ref: np.ndarray  # [N] index into `ref` of each image's first reference
  image: np.ndarray  # [S] image of each sentence
  is_hyp: np.ndarray  # [S] bool

  @staticmethod
  def of(references: Sequence[Sequence[str]]) -> "Layout":
    if any(isinstance(refs, str) for refs in references):
      raise ValueError("references must be lists of strings, got a bare string")
    num_refs = np.fromiter(map(len, references), np.int64, len(references))  # [N]
    if (num_refs == 0).any():
      raise ValueError(f"image {int(np.argmin(num_refs))} has no references")
    hyp = np.cumsum(num_refs + 1) - (num_refs + 1)  # [N]
    image = np.repeat(np.arange(len(num_refs)), num_refs + 1)  # [S]
    is_hyp = np.zeros(len(image), bool)
    is_hyp[hyp] = True
    ref = np.flatnonzero(~is_hyp)
    return Layout(num_refs, hyp, ref, image[ref], hyp - np.arange(len(hyp)), image, is_hyp)

  @staticmethod
  def flatten(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> list[str]:
    return [s for h, refs in zip(hypotheses, references, strict=True) for s in (h, *refs)]


def word_ids(split: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
  """([T] word ids of all sentences back to back, [S] words per sentence)."""
  lengths = np.fromiter(map(len, split), np.int64, len(split))
  words = list(itertools.chain.from_iterable(split))
  vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
  return np.fromiter(map(vocab.__getitem__, words), np.int64, len(words)), lengths


@dataclasses.dataclass(frozen=True)
class NGrams:
  """Distinct (n-gram, sentence) entries of one order, sorted by n-gram, then sentence.

  With the image-major `Layout`, each (n-gram, image) group is a run of entries that starts
  with the hypothesis entry when the hypothesis has that n-gram.
  """

  gram: np.ndarray  # [E] dense n-gram id, the same id in every sentence
  sent: np.ndarray  # [E] sentence index
  count: np.ndarray  # [E] occurrences of the n-gram in the sentence
  group: np.ndarray  # [E] index of the entry's (n-gram, image) group
  group_start: np.ndarray  # [G] first entry of each group
  num_grams: int
  # [num_grams] each n-gram's words packed as digits of base `key_base` (`count_ngrams`),
  # the same in every call: what a fixed document frequency is looked up by. Empty unless asked.
  key: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))


def count_ngrams(
    tokens: np.ndarray, lengths: np.ndarray, layout: Layout, n: int = 4, key_base: int = 0
) -> list[NGrams]:
  """Counts the 1..n-grams of every sentence, as `str.split()` + tuple dicts would.

  A k-gram is the pair (id of its (k-1)-gram, its last word). One sort of (pair, position)
  per order gives dense ids and every grouping the metrics need; no tuple is ever built.
  key_base > every token id: also pack each n-gram's word ids into `NGrams.key` (the ids
  must then be the caller's fixed ones, e.g. vocabulary ids, and key_base ** n < 2 ** 63).
  """
  if key_base and key_base ** n > _MAX_PACKED_KEY:
    raise ValueError(f"key_base {key_base} ** {n} does not fit an int64 n-gram key")
  num_tokens, vocab = len(tokens), int(tokens.max(initial=-1)) + 1
  sent_of = np.repeat(np.arange(len(lengths)), lengths)  # [T]
  left = np.cumsum(lengths)[sent_of] - np.arange(num_tokens)  # [T] tokens from here to sentence end
  gram_at = tokens  # [T] id of the k-gram starting at each position, where left >= k
  pos = np.arange(num_tokens)  # [O] k-gram starts, in the order of the (k-1)-gram sort
  keys = np.zeros(0, np.int64)  # [V_(k-1)] packed words of each (k-1)-gram, with key_base
  out = []
  for k in range(1, n + 1):
    pos = pos[left[pos] >= k]  # so the keys below come nearly sorted, which timsort likes
    pair = tokens[pos] if k == 1 else gram_at[pos] * vocab + tokens[pos + k - 1]  # [O]
    if (int(pair.max(initial=0)) + 1) * num_tokens <= _MAX_PACKED_KEY:  # sort a packed key
      key = np.sort(pair * num_tokens + pos, kind="stable" if k > 1 else None)
      pair, pos = key // num_tokens, key % num_tokens
    else:
      order = np.argsort(pair, kind="stable")  # ties keep ascending positions, as above
      pair, pos = pair[order], pos[order]
    new_gram = np.diff(pair, prepend=-1) != 0  # [O]
    gram = np.cumsum(new_gram) - 1  # [O] dense ids
    gram_at = np.full(num_tokens, -1, np.int64)
    gram_at[pos] = gram
    sent = sent_of[pos]  # [O] ascending within each n-gram

    start = np.flatnonzero(new_gram | (np.diff(sent, prepend=-1) != 0))  # [E]
    count = np.diff(start, append=len(pos))
    gram, sent = gram[start], sent[start]
    new_group = new_gram[start] | (np.diff(layout.image[sent], prepend=-1) != 0)  # [E]
    group = np.cumsum(new_group) - 1
    num_grams = int(gram[-1]) + 1 if len(gram) else 0
    if key_base:  # Dense ids follow the sorted pairs, so each id's first pair names it.
      first_pair = pair[new_gram]  # [V_k]
      last_word = first_pair % vocab if k > 1 else first_pair
      keys = last_word if k == 1 else keys[first_pair // vocab] * key_base + last_word
    out.append(NGrams(gram, sent, count, group, np.flatnonzero(new_group), num_grams,
                      *([keys] if key_base else [])))
  return out
