import collections
import csv
import re

import numpy as np

from capflax.data import tokenizer
from capflax.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocabulary


def test_words_lowercase_and_split_on_punctuation():
  assert tokenizer.words("A dog's ball, RED-and-blue .") == ["a", "dog", "s", "ball", "red", "and",
                                                             "blue"]
  assert tokenizer.words("  \t ") == []


def test_build_counts_min_and_orders_by_frequency():
  vocab = Vocabulary.build(["b a a", "c b a", "d"], min_count=2)
  assert vocab.itos == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"]


def test_encode_decode_round_trip_with_unk_and_truncation():
  vocab = Vocabulary(["a", "red", "circle"])
  ids = vocab.encode("A red square.", max_len=5)
  assert ids.tolist() == [BOS_ID, 4, 5, UNK_ID, EOS_ID, PAD_ID, PAD_ID]
  assert vocab.decode(ids) == "a red <unk>"
  assert vocab.encode("a red circle a red", max_len=3).tolist() == [BOS_ID, 4, 5, 6, EOS_ID]
  assert vocab.decode(np.array([4, EOS_ID, 5])) == "a"


def test_save_load(tmp_path):
  vocab = Vocabulary.build(["x y z", "x y", "x"], min_count=1)
  vocab.save(str(tmp_path / "v.json"))
  assert Vocabulary.load(str(tmp_path / "v.json")) == vocab


def test_flickr8k_train_vocabulary_size(flickr8k_text):
  """Against an independent count of the official train captions (and the data README's 2,535)."""
  train = set((flickr8k_text / "Flickr_8k.trainImages.txt").read_text().split())
  with open(flickr8k_text / "captions.txt", newline="", encoding="utf-8") as f:
    captions = [c for image, c in list(csv.reader(f))[1:] if image in train]
  assert len(captions) == 30_000
  counts = collections.Counter(w for c in captions for w in re.findall(r"[a-z0-9]+", c.lower()))
  expected = sum(n >= 5 for n in counts.values())
  assert expected == 2535
  assert len(Vocabulary.build(captions, min_count=5)) == expected + 4
