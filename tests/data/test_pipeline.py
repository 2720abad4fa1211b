import numpy as np
import pytest
from PIL import Image

from capflax.data import pipeline, sources
from capflax.data.tokenizer import Vocabulary


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """7 solid-colour images, image k captioned 'img{k} cap{j}' for j < 2 + k % 2."""
  d = tmp_path_factory.mktemp("tiny")
  (d / "Images").mkdir()
  lines = ["image,caption"]
  for k in range(7):
    Image.new("RGB", (40 + k, 30), (30 * k, 255 - 30 * k, 7)).save(d / "Images" / f"{k}.png")
    lines += [f"{k}.png,img{k} cap{j}" for j in range(2 + k % 2)]
  (d / "captions.txt").write_text("\n".join(lines))
  records = sources.read_kaggle(str(d))
  vocab = Vocabulary.build((c for r in records for c in r.captions), min_count=1)
  return records, vocab


def _stream(tiny, **kw):
  records, vocab = tiny
  args = dict(image_size=16, max_len=4, global_batch=4, seed=7) | kw
  return pipeline.train_dataset(records, vocab, **args)


def _take(it, n):
  return [next(it) for _ in range(n)]


def test_batches_are_device_ready(tiny):
  batch = next(_stream(tiny))
  assert batch["image"].shape == (4, 16, 16, 3) and batch["image"].dtype == np.uint8
  assert batch["tokens"].shape == (4, 6) and batch["tokens"].dtype == np.int32


def test_resume_at_step_sees_what_an_uninterrupted_run_sees(tiny):
  full = _take(_stream(tiny), 6)
  resumed = _take(_stream(tiny, start_element=3 * 4), 3)
  for a, b in zip(full[3:], resumed):
    np.testing.assert_array_equal(a["tokens"], b["tokens"])
    np.testing.assert_array_equal(a["image"], b["image"])


def test_resume_with_another_batch_size_continues_the_same_element_order(tiny):
  """The data position is an element count: a run resumed with batch 2 after 5 elements
  sees elements 5, 6, 7, ... of the same stream."""
  full = np.concatenate([b["tokens"] for b in _take(_stream(tiny), 4)])  # Elements 0..15.
  resumed = np.concatenate([b["tokens"] for b in _take(
      _stream(tiny, global_batch=2, start_element=5), 5)])  # Elements 5..14.
  np.testing.assert_array_equal(resumed, full[5:15])


def test_other_seed_other_order(tiny):
  a = np.concatenate([b["tokens"] for b in _take(_stream(tiny), 4)])
  b = np.concatenate([b["tokens"] for b in _take(_stream(tiny, seed=8), 4)])
  assert not np.array_equal(a, b)


def test_hosts_read_disjoint_halves_of_each_global_batch(tiny):
  whole = _take(_stream(tiny), 3)
  halves = [_take(_stream(tiny, host=pipeline.HostSlice(i, 2)), 3) for i in range(2)]
  for step in range(3):
    joined = np.concatenate([halves[0][step]["tokens"], halves[1][step]["tokens"]])
    np.testing.assert_array_equal(joined, whole[step]["tokens"])


def test_all_mode_visits_every_pair_once_per_epoch(tiny):
  records, vocab = tiny
  pairs = sum(len(r.captions) for r in records)  # 17
  tokens = np.concatenate([b["tokens"] for b in _take(_stream(tiny), 2 * pairs // 4 + 1)])
  expected = sorted(tuple(vocab.encode(c, 4)) for r in records for c in r.captions)
  assert sorted(map(tuple, tokens[:pairs])) == expected
  assert sorted(map(tuple, tokens[pairs:2 * pairs])) == expected
  assert not np.array_equal(tokens[:pairs], tokens[pairs:2 * pairs])  # Reshuffled per epoch.


def test_one_mode_visits_every_image_once_per_epoch(tiny):
  records, vocab = tiny
  tokens = np.concatenate([b["tokens"] for b in _take(_stream(tiny, captions_per_image="one"), 4)])
  first_word = [vocab.itos[t] for t in tokens[:7, 1]]
  assert sorted(first_word) == [f"img{k}" for k in range(7)]


def test_group_mode_gives_every_image_once_with_its_own_captions(tiny):
  """Images with 2 or 3 captions in groups of 3: each caption once where it has 3, both
  (one twice) where it has 2; every row of a group is the image's own."""
  records, vocab = tiny
  batches = _take(_stream(tiny, captions_per_image="group", group_size=3, image_index=True), 4)
  assert batches[0]["tokens"].shape == (4, 3, 6) and batches[0]["image"].shape == (4, 16, 16, 3)
  tokens = np.concatenate([b["tokens"] for b in batches])  # [16, 3, 6]
  index = np.concatenate([b["image_index"] for b in batches])  # [16]
  assert sorted(index[:7]) == list(range(7)) and sorted(index[7:14]) == list(range(7))
  for group, k in zip(tokens, index):
    own = {tuple(vocab.encode(c, 4)) for c in records[k].captions}
    rows = [tuple(row) for row in group]
    assert set(rows) == own and len(rows) == 3  # All of its captions, nothing else.
  orders = {tuple(map(tuple, g)) for g, k in zip(tokens, index) if k == 1}  # 3 captions.
  assert len(orders) >= 2  # Drawn in a new order each epoch.


def test_group_mode_resumes_at_its_data_position(tiny):
  group = dict(captions_per_image="group", group_size=3)
  full = _take(_stream(tiny, **group), 4)
  resumed = _take(_stream(tiny, start_element=2 * 4, **group), 2)
  for a, b in zip(full[2:], resumed):
    np.testing.assert_array_equal(a["tokens"], b["tokens"])
    np.testing.assert_array_equal(a["image"], b["image"])


def test_eval_covers_every_record_once_with_padding_mask(tiny):
  records, _ = tiny
  batches = list(pipeline.eval_dataset(records, image_size=16, global_batch=4))
  assert len(batches) == 2
  index = np.concatenate([b["index"] for b in batches])
  mask = np.concatenate([b["mask"] for b in batches])
  np.testing.assert_array_equal(index[mask], np.arange(7))
  assert mask.tolist() == [True] * 7 + [False]
  # The image of record k: solid colour (30k, 255 - 30k, 7).
  pixel = batches[0]["image"][2, 8, 8]
  assert np.abs(pixel.astype(int) - [60, 195, 7]).max() <= 2
  hosts = [list(pipeline.eval_dataset(records, image_size=16, global_batch=4,
                                      host=pipeline.HostSlice(i, 2))) for i in range(2)]
  assert all(len(h) == 2 for h in hosts)  # Same number of batches on every host.
  np.testing.assert_array_equal(hosts[1][0]["index"], [2, 3])
