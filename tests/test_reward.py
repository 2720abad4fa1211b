"""SCST's reward against pycocoevalcap's CiderScorer with the training document frequencies
(the fixture, made by scripts/make_reward_fixture.py), and the caption cuts it scores."""

import json

import numpy as np
import pytest

from capflax import reward
from capflax.data import sources
from capflax.data.tokenizer import EOS_ID, PAD_ID, UNK_ID, Vocabulary
from capflax.metrics.cider import DocumentFrequency, cider_d
from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "reward" / "scst_reward.json"


@pytest.fixture(scope="module")
def fixture():
  with open(FIXTURE) as f:
    return json.load(f)


def _ids(text: str, vocab: Vocabulary) -> list[int]:
  return [vocab.stoi[w] for w in text.split()]


@pytest.mark.parametrize("append_eos", [True, False])
@pytest.mark.parametrize("bleu4_weight", [0.0, 0.5])
def test_matches_pycocoevalcap_with_the_training_document_frequencies(fixture, append_eos,
                                                                      bleu4_weight):
  """Ids stand for words one to one, so CIDEr-D over ids is CIDEr-D over the fixture's words."""
  words = sorted({w for image in fixture["train"] for r in image for w in r.split()}
                 | {w for s in fixture["batch"] for w in s["caption"].split()})
  vocab = Vocabulary(words)
  eos = [EOS_ID] if append_eos else []
  references = [[np.array(_ids(r, vocab) + eos) for r in image] for image in fixture["train"]]
  score = reward.Reward(references, len(vocab), bleu4_weight)
  images = np.array([s["image"] for s in fixture["batch"]])
  captions = [np.array(_ids(s["caption"], vocab) + (eos if s["ended"] else []), np.int64)
              for s in fixture["batch"]]
  rewards, cider = score(images, captions)
  want = fixture[f"append_eos={append_eos}"]
  np.testing.assert_allclose(cider, want["cider_d"], rtol=0, atol=1e-9)
  np.testing.assert_allclose(rewards, np.array(want["cider_d"]) + bleu4_weight *
                             np.array(want["bleu4"]), rtol=0, atol=1e-9)
  # The batch's own references would give other numbers: the frequencies are the corpus's.
  batch_cider = cider_d([" ".join(map(str, c)) for c in captions],
                        [[" ".join(map(str, r)) for r in references[i]] for i in images])[1]
  assert np.abs(batch_cider - cider).max() > 0.01


def test_document_frequencies_count_each_image_once():
  # Image 0 says "a b" twice and "b" once; image 1 "b c". Unigram b is in both images: 2.
  df = DocumentFrequency.of([[np.array([4, 5]), np.array([4, 5]), np.array([5])],
                             [np.array([5, 6])]], key_base=8)
  assert df.num_images == 2
  assert df.lookup(0, np.array([4, 5, 6, 7])).tolist() == [1, 2, 1, 0]
  assert df.lookup(1, np.array([4 * 8 + 5, 5 * 8 + 6, 6 * 8 + 5])).tolist() == [1, 1, 0]
  assert df.lookup(2, np.array([4 * 64 + 5 * 8 + 6])).tolist() == [0]


def test_with_the_scored_references_frequencies_it_is_coco_captions_cider_d():
  refs = [[np.array([4, 5, 6]), np.array([5, 6, 7, 4])], [np.array([6, 4])],
          [np.array([7, 7, 5]), np.array([4])]]
  hyps = [np.array([4, 5, 7]), np.array([6, 4, 4]), np.array([7, 5])]
  _, ours = reward.Reward(refs, 8)(np.arange(3), hyps)
  _, coco = cider_d([" ".join(map(str, h)) for h in hyps],
                    [[" ".join(map(str, r)) for r in image] for image in refs])
  np.testing.assert_allclose(ours, coco, rtol=0, atol=1e-12)


def test_caption_cuts_at_eos_or_pad_and_keeps_eos_when_asked():
  tokens = np.array([[7, 8, EOS_ID, PAD_ID], [EOS_ID, PAD_ID, PAD_ID, PAD_ID], [7, 7, 7, 7],
                     [9, PAD_ID, 5, EOS_ID]])
  words, eos = reward.caption_lengths(tokens)
  assert words.tolist() == [2, 0, 4, 1] and eos.tolist() == [True, True, False, False]
  assert [c.tolist() for c in reward.caption_words(tokens, True)] == [
      [7, 8, EOS_ID], [EOS_ID], [7, 7, 7, 7], [9]]
  assert [c.tolist() for c in reward.caption_words(tokens, False)] == [[7, 8], [], [7, 7, 7, 7],
                                                                       [9]]


def test_references_are_read_as_training_reads_them(tmp_path):
  vocab = Vocabulary(["a", "dog", "runs"])
  records = [sources.Record("x.jpg", str(tmp_path / "x.jpg"),
                            ("A dog runs, a dog!", "a cat runs"))]
  score = reward.Reward.from_records(records, vocab, max_len=4, append_eos=True)
  a, dog, runs = (vocab.stoi[w] for w in ("a", "dog", "runs"))
  # Cut at 4 words; the unknown "cat" is <unk>; EOS appended.
  assert [r.tolist() for r in score.references[0]] == [[a, dog, runs, a, EOS_ID],
                                                       [a, UNK_ID, runs, EOS_ID]]
