"""Makes tests/fixtures/reward/scst_reward.json: SCST rewards computed by pycocoevalcap.

Run once, by hand, never by the tests (they read the JSON only):

    python3 -m venv /tmp/rewardvenv && /tmp/rewardvenv/bin/pip install pycocoevalcap==1.2 numpy
    /tmp/rewardvenv/bin/python scripts/make_reward_fixture.py tests/fixtures/reward/scst_reward.json

A small training corpus (word salad over few words, so n-grams repeat across images) and a
batch of sampled captions, some of one image, some never ending (no EOS), one empty. Each
sample is scored by pycocoevalcap's CiderScorer against its image's references with the
scorer's document frequencies set to the *training* references' counts (computed by another
CiderScorer over the whole corpus) and its idf's image count to the corpus's, which is how
ruotianluo/self-critical.pytorch's CiderD reward runs (df from the training references,
counted once); and by pycocoevalcap's Bleu(4) (the per-image list). Both with and without
EOS appended as a word (`<eos>`: every reference's, and a sample's that emitted one).
"""

import json
import math
import os
import sys

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider_scorer import CiderScorer

EOS = "<eos>"


class _Corpus(list):
  """The scored references, whose len() is the training corpus's image count: CiderScorer
  takes its idf's log(N) from len(crefs) when it computes."""

  def __init__(self, items, size):
    super().__init__(items)
    self.size = size

  def __len__(self):
    return self.size


def corpus_and_batch(seed: int = 0):
  rng = np.random.default_rng(seed)
  words = "a dog cat runs red ball on the grass".split()

  def sentence(low, high):
    return " ".join(rng.choice(words, rng.integers(low, high)))

  train = [[sentence(2, 9) for _ in range(rng.integers(2, 6))] for _ in range(14)]
  batch = []  # (image, caption, whether it emitted EOS)
  for image in (0, 0, 0, 3, 5, 5, 8, 13):
    batch.append((image, sentence(1, 10), bool(rng.random() < 0.8)))
  batch += [(2, train[2][0], True),  # a reference itself
            (4, "", True),  # EOS first: an empty caption
            (6, "zebra quantum a dog", True),  # words no reference has
            (7, sentence(12, 13), False)]  # ran to the length limit
  return train, batch


def scores(train, batch, append_eos: bool):
  tail = (" " + EOS) if append_eos else ""
  refs = [[r + tail for r in image] for image in train]
  frequency = CiderScorer(n=4, sigma=6.0)
  for image in refs:
    frequency.cook_append(None, image)
  frequency.compute_doc_freq()

  hyps = [(c + tail if ended else c).strip() for _, c, ended in batch]
  scorer = CiderScorer(n=4, sigma=6.0)
  for (image, _, _), hyp in zip(batch, hyps):
    scorer.cook_append(hyp, refs[image])
  scorer.document_frequency = frequency.document_frequency
  scorer.crefs = _Corpus(scorer.crefs, len(train))
  cider = scorer.compute_cider()  # Not compute_score, which would add the batch's counts.
  assert math.isclose(scorer.ref_len, math.log(len(train)))

  gts = {i: refs[image] for i, (image, _, _) in enumerate(batch)}
  res = {i: [hyp] for i, hyp in enumerate(hyps)}
  _, bleu = Bleu(4).compute_score(gts, res, verbose=0)
  return [float(x) for x in cider], [float(x) for x in bleu[3]]


def main(out: str):
  train, batch = corpus_and_batch()
  record = {"train": train, "batch": [{"image": i, "caption": c, "ended": e}
                                      for i, c, e in batch], "eos": EOS}
  for append_eos in (True, False):
    cider, bleu4 = scores(train, batch, append_eos)
    record[f"append_eos={append_eos}"] = {"cider_d": cider, "bleu4": bleu4}
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with open(out, "w") as f:
    json.dump(record, f, indent=1)
  print(f"wrote {out}: {len(batch)} samples against {len(train)} training images")


if __name__ == "__main__":
  if "--help" in sys.argv or len(sys.argv) != 2:
    print(__doc__)
    sys.exit(0 if "--help" in sys.argv else 1)
  main(sys.argv[1])
