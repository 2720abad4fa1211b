"""`compute_scores`: BLEU-1..4, ROUGE-L and CIDEr-D of a set of captions, coco-caption numbers;
`image_scores`: each image's own BLEU-4 and CIDEr-D."""

import itertools
from collections.abc import Hashable, Mapping, Sequence

from capflax.metrics.bleu import bleu_from_ngrams
from capflax.metrics.ngrams import Layout, count_ngrams, word_ids
from capflax.metrics.cider import cider_from_ngrams
from capflax.metrics.rouge import rouge_from_ids


def _aligned(hypotheses: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]):
  """Hypothesis and reference lists in one key order; one-line ValueError naming a bad key."""
  if not hypotheses:
    raise ValueError("no hypotheses to score")
  for key, hyp in hypotheses.items():
    if key not in references:
      raise ValueError(f"hypothesis key {key!r} has no references")
    if not isinstance(hyp, str):
      raise ValueError(f"hypothesis for key {key!r} must be a str, got {type(hyp).__name__}")
    if isinstance(references[key], str) or not references[key]:
      raise ValueError(f"references for key {key!r} must be a non-empty list of str")
  for key in references:
    if key not in hypotheses:
      raise ValueError(f"reference key {key!r} has no hypothesis")
  return list(hypotheses.values()), [references[key] for key in hypotheses]


def _bleu_and_cider(hyps: list[str], refs: list[Sequence[str]]):
  """The shared n-gram pass: (layout, split sentences, ids, lengths, BLEU, CIDEr-D) with
  corpus values and per-image arrays ([4, N] and [N])."""
  layout = Layout.of(refs)
  sentences = Layout.flatten(hyps, refs)
  split = [s.split() for s in sentences]  # BLEU and CIDEr-D tokens
  tokens, lengths = word_ids(split)
  ngrams = count_ngrams(tokens, lengths, layout, 4)
  return (layout, sentences, split, tokens, lengths, bleu_from_ngrams(ngrams, lengths, layout),
          cider_from_ngrams(ngrams, lengths, layout))


def compute_scores(
    hypotheses: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> dict[str, float | int]:
  """Corpus BLEU-1..4, ROUGE-L, CIDEr-D as pycocoevalcap computes them, plus num_images.

  Inputs are already tokenised (space-separated words), key -> hypothesis and key -> list of
  references; both must have the same keys. BLEU/ROUGE-L in 0..1, CIDEr-D in coco's x10 units.
  """
  hyps, refs = _aligned(hypotheses, references)
  layout, sentences, split, tokens, lengths, (bleus, _), (cider, _) = _bleu_and_cider(hyps, refs)
  # ROUGE-L splits on " " only: the same words unless some spacing is irregular (or "" appears).
  words = itertools.chain.from_iterable(split)
  if not (all(sentences) and " ".join(sentences) == " ".join(words)):
    tokens, lengths = word_ids([s.split(" ") for s in sentences])
  rouge, _ = rouge_from_ids(tokens, lengths, layout)
  scores = {f"bleu{k + 1}": float(b) for k, b in enumerate(bleus)}
  return scores | {"rouge_l": float(rouge), "cider_d": float(cider), "num_images": len(hyps)}


def image_scores(
    hypotheses: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> dict[Hashable, dict[str, float]]:
  """key -> {'bleu4', 'cider_d'} of that image alone, as pycocoevalcap's per-image lists.

  CIDEr-D's idf comes from the whole set, so an image's score depends on the others: these
  are the values whose mean is `compute_scores`' corpus CIDEr-D. BLEU-4 is the sentence
  score of the image's caption against its references.
  """
  hyps, refs = _aligned(hypotheses, references)
  *_, (_, bleu_per_image), (_, cider_per_image) = _bleu_and_cider(hyps, refs)
  return {key: {"bleu4": float(bleu_per_image[3, i]), "cider_d": float(cider_per_image[i])}
          for i, key in enumerate(hypotheses)}
