"""CIDEr-D exactly as coco-caption's `CiderScorer` (pycocoevalcap `Cider`), quirks included.

Document frequencies come from the references being scored (one count per image), idf =
log(N) - log(max(1, df)); tf-idf vectors per n-gram order, the hypothesis clipped to the
reference (min(hyp, ref) * ref), cosine-normalised, times a Gaussian length penalty
(sigma 6) whose 'length' is the number of BIGRAMS, not words (coco-caption counts
`if n == 1`, the 0-based order index); mean over orders, divided by the number of
references, times 10. Vectorised over interned n-grams instead of per-pair dicts.

The bigram quirk is kept as written, though it never changes a score: bigrams = words - 1
for any non-empty sentence, so the length difference is the same, and a pair with an empty
sentence has a zero norm and scores 0 either way.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np

from capflax.metrics.ngrams import Layout, NGrams, count_ngrams, word_ids


def _reference_frequency(g: NGrams, layout: Layout) -> np.ndarray:
  """[V_k] images whose references hold each n-gram of order g."""
  last = np.append(g.group_start, len(g.sent))[1:] - 1  # [G]
  # An (n-gram, image) group holds a reference entry iff its last entry is one.
  return np.bincount(g.gram[last], ~layout.is_hyp[g.sent[last]], minlength=g.num_grams)


@dataclasses.dataclass(frozen=True)
class DocumentFrequency:
  """Document frequencies counted once over a fixed corpus (SCST's training references)
  instead of the scored references: per n-gram order, the sorted packed word-id keys
  (`NGrams.key`) and the images whose references hold each, and the corpus's image count."""
  keys: tuple[np.ndarray, ...]  # [n] of [V_k] sorted
  counts: tuple[np.ndarray, ...]  # [n] of [V_k]
  num_images: int
  key_base: int  # Above every word id.

  @classmethod
  def of(cls, references: Sequence[Sequence[np.ndarray]], key_base: int,
         n: int = 4) -> "DocumentFrequency":
    """From each image's references as word-id arrays (ids < key_base)."""
    layout = Layout.of(references)
    sentences = Layout.flatten([np.zeros(0, np.int64)] * len(references), references)
    lengths = np.fromiter(map(len, sentences), np.int64, len(sentences))
    tokens = np.concatenate(sentences).astype(np.int64)
    keys, counts = [], []
    for g in count_ngrams(tokens, lengths, layout, n, key_base):
      order = np.argsort(g.key)
      keys.append(g.key[order])
      counts.append(_reference_frequency(g, layout)[order])
    return cls(tuple(keys), tuple(counts), len(references), key_base)

  def lookup(self, order: int, keys: np.ndarray) -> np.ndarray:
    """Counts of the n-grams `keys` of order index `order` (0: unigrams); 0 if unseen."""
    table = self.keys[order]
    at = np.minimum(np.searchsorted(table, keys), max(len(table) - 1, 0))  # [V_k]
    found = table[at] == keys if len(table) else np.zeros(len(keys), bool)
    return np.where(found, self.counts[order][at] if len(table) else 0, 0)


def cider_from_ngrams(
    ngrams: list[NGrams], lengths: np.ndarray, layout: Layout, sigma: float = 6.0,
    df: DocumentFrequency | None = None
) -> tuple[float, np.ndarray]:
  """(corpus CIDEr-D, [N] per-image) from `count_ngrams` (1..4) of the `layout` sentences.

  df: fixed document frequencies (the n-grams counted with its `key_base`) instead of the
  scored references', as SCST's reward uses them; idf then takes its image count too."""
  num_images, num_sents = len(layout.hyp), len(layout.image)
  length = np.maximum(lengths - 1, 0)  # [S] the quirk: bigrams, not words
  delta = (length[layout.hyp][layout.ref_image] - length[layout.ref]).astype(np.float64)  # [R]
  penalty = np.exp(-(delta**2) / (2 * sigma**2))  # [R]

  similarity = np.zeros(len(layout.ref))  # [R] sum over orders of the penalised cosines
  for k, g in enumerate(ngrams):
    first = g.group_start  # [G]
    if df is None:
      idf = np.log(float(num_images)) - np.log(np.maximum(1.0, _reference_frequency(g, layout)))
    else:
      idf = np.log(float(df.num_images)) - np.log(np.maximum(1.0, df.lookup(k, g.key)))  # [V_k]
    tfidf = g.count * idf[g.gram]  # [E]
    norm = np.sqrt(np.bincount(g.sent, tfidf**2, minlength=num_sents))  # [S]

    hyp_tfidf = np.where(layout.is_hyp[g.sent[first]], tfidf[first], 0.0)[g.group]  # [E]
    clipped = np.where(layout.is_hyp[g.sent], 0.0, np.minimum(hyp_tfidf, tfidf) * tfidf)  # [E]
    dot = np.bincount(g.sent, clipped, minlength=num_sents)[layout.ref].astype(float)  # [R]
    hyp_norm, ref_norm = norm[layout.hyp][layout.ref_image], norm[layout.ref]  # [R], [R]
    nonzero = (hyp_norm != 0) & (ref_norm != 0)  # else coco-caption leaves the dot (0) as is
    similarity += np.divide(dot, hyp_norm * ref_norm, out=dot, where=nonzero) * penalty

  per_image = np.bincount(layout.ref_image, similarity, minlength=num_images)  # [N]
  per_image = per_image / len(ngrams) / layout.num_refs * 10.0
  return float(np.mean(per_image)), per_image


def cider_d(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]]
) -> tuple[float, np.ndarray]:
  """(corpus CIDEr-D, [N] per-image); hypotheses[i] is scored against references[i]."""
  layout = Layout.of(references)
  tokens, lengths = word_ids([s.split() for s in Layout.flatten(hypotheses, references)])
  return cider_from_ngrams(count_ngrams(tokens, lengths, layout, 4), lengths, layout)
