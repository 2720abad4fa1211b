"""The coco-caption evaluation end to end: PTB tokenisation, then the scores.

BLEU-1..4, ROUGE-L and CIDEr-D need no Java (`compute_scores`). METEOR is the official
METEOR 1.5 jar that pycocoevalcap ships, run only when `java` is on the PATH.
"""

import functools
import shutil
from collections.abc import Hashable, Mapping, Sequence

from absl import logging

from capflax.metrics.ptb import tokenize
from capflax.metrics.scores import compute_scores, image_scores


def meteor_unavailable() -> str | None:
  """Why METEOR cannot run here (one line), or None when it can."""
  if shutil.which("java") is None:
    return "METEOR skipped: java is not installed (the METEOR 1.5 jar needs it)."
  try:
    import pycocoevalcap.meteor.meteor  # noqa: F401
  except ImportError:
    return "METEOR skipped: pycocoevalcap (which ships the METEOR 1.5 jar) is not installed."
  return None


@functools.cache
def meteor_scorer():
  """pycocoevalcap's METEOR 1.5 process (one JVM per Python process: it starts slowly)."""
  from pycocoevalcap.meteor.meteor import Meteor
  return Meteor()


def meteor(hypotheses: Mapping[Hashable, str],
           references: Mapping[Hashable, Sequence[str]]) -> float:
  """Corpus METEOR of PTB-tokenised captions, from the official jar (needs java)."""
  score, _ = meteor_scorer().compute_score({k: list(references[k]) for k in hypotheses},
                                           {k: [h] for k, h in hypotheses.items()})
  return float(score)


def _tokenized(hypotheses, references):
  """PTB-tokenised copies of both, as coco-caption scores them."""
  return ({k: tokenize(h) for k, h in hypotheses.items()},
          {k: [tokenize(r) for r in rs] for k, rs in references.items()})


def coco_image_scores(hypotheses: Mapping[Hashable, str],
                      references: Mapping[Hashable, Sequence[str]]) -> dict[Hashable, dict]:
  """Raw caption text in, each image's own BLEU-4 and CIDEr-D out (`image_scores`)."""
  return image_scores(*_tokenized(hypotheses, references))


def coco_scores(hypotheses: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]],
                with_meteor: bool = True) -> dict:
  """Raw caption text in, coco-caption's numbers out (METEOR too if asked and java exists)."""
  hyps, refs = _tokenized(hypotheses, references)
  scores = compute_scores(hyps, refs)
  if with_meteor:
    why_not = meteor_unavailable()
    if why_not:
      logging.warning(why_not)
    else:
      scores["meteor"] = meteor(hyps, refs)
  return scores
