"""SCST's reward: each sampled caption's CIDEr-D against its image's training references, as
ruotianluo/self-critical.pytorch computes it, plus optionally a weight times its BLEU-4.

As there, captions and references are vocabulary ids (the references as training reads them:
rare words `<unk>`, cut at `data.max_len` words), EOS counts as a word when `append_eos` (a
caption's if it emitted one; every reference's), and the document frequencies are the
*training* references', counted once (`cider.DocumentFrequency`), not the batch's. The
n-gram counting, CIDEr-D and BLEU-4 are `capflax.metrics`' vectorised ones, fed ids directly.
"""

import numpy as np

from capflax.data import sources
from capflax.data.tokenizer import EOS_ID, PAD_ID, Vocabulary
from capflax.metrics.bleu import bleu_from_ngrams
from capflax.metrics.cider import DocumentFrequency, cider_from_ngrams
from capflax.metrics.ngrams import Layout, count_ngrams


def caption_lengths(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Sampled tokens [n, T] -> ([n] words before the first EOS or PAD, [n] whether that stop
  is an EOS); a caption that never stopped has T words and no EOS."""
  n, t = tokens.shape
  stop = (tokens == EOS_ID) | (tokens == PAD_ID)  # [n, T]
  words = np.where(stop.any(1), stop.argmax(1), t)  # [n]
  eos = (words < t) & (tokens[np.arange(n), np.minimum(words, t - 1)] == EOS_ID)  # [n]
  return words, eos


def caption_words(tokens: np.ndarray, append_eos: bool) -> list[np.ndarray]:
  """Sampled tokens [n, T] -> each caption's word ids, its EOS too with `append_eos`."""
  words, eos = caption_lengths(tokens)
  return [row[:k] for row, k in zip(tokens, words + eos * append_eos)]


class Reward:
  """rewards (images [n] indices into the train records, tokens [n, T]) -> ([n] reward, [n]
  CIDEr-D); the references and document frequencies are prepared once per run."""

  def __init__(self, references: list[list[np.ndarray]], vocab_size: int,
               bleu4_weight: float = 0.0):
    """references: per train image, its captions as word-id arrays (EOS already appended
    if it counts); ids < vocab_size."""
    self.references, self.vocab_size, self.bleu4_weight = references, vocab_size, bleu4_weight
    self.df = DocumentFrequency.of(references, vocab_size)
    self._ref_tokens = [np.concatenate(refs).astype(np.int64) for refs in references]
    self._ref_lengths = [np.fromiter(map(len, refs), np.int64, len(refs)) for refs in references]

  @classmethod
  def from_records(cls, records: list[sources.Record], vocab: Vocabulary, max_len: int,
                   append_eos: bool, bleu4_weight: float = 0.0) -> "Reward":
    """The train records' captions encoded as training encodes them (`Vocabulary.encode`)."""
    references = []
    for r in records:
      rows = [vocab.encode(c, max_len) for c in r.captions]  # BOS w1 .. wn EOS PAD ..
      references.append([row[1:int(np.argmax(row == EOS_ID)) + append_eos] for row in rows])
    return cls(references, len(vocab), bleu4_weight)

  def __call__(self, images: np.ndarray, captions: list[np.ndarray]) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """(reward, CIDEr-D), each [n], of captions[i] (word ids) against image images[i]'s
    references."""
    # Layout reads only how many references each caption has.
    layout = Layout.of([self._ref_lengths[i] for i in images])
    tokens = np.concatenate([x for c, i in zip(captions, images)
                             for x in (c.astype(np.int64), self._ref_tokens[i])])
    lengths = np.concatenate([x for c, i in zip(captions, images)
                              for x in ([len(c)], self._ref_lengths[i])])
    ngrams = count_ngrams(tokens, lengths, layout, 4, self.vocab_size)
    _, cider = cider_from_ngrams(ngrams, lengths, layout, df=self.df)  # [n]
    if not self.bleu4_weight:
      return cider, cider
    _, bleu = bleu_from_ngrams(ngrams, lengths, layout)  # [4, n]
    return cider + self.bleu4_weight * bleu[3], cider
