"""data.train_fraction: a nested, order-independent subset of the train images only."""

import pytest

from capflax.data import dataset, sources
from configs import demo


def _records(n):
  return [sources.Record(f"img_{i:04d}.jpg", f"/x/img_{i:04d}.jpg", (f"caption {i}",))
          for i in range(n)]


def test_subsets_are_nested_sized_and_independent_of_listing_order():
  records = _records(1000)
  quarter, half = dataset.train_subset(records, 0.25), dataset.train_subset(records, 0.5)
  assert (len(quarter), len(half)) == (250, 500)
  assert {r.filename for r in quarter} < {r.filename for r in half}
  assert quarter == [r for r in records if r in quarter]  # The split's order is kept.
  reversed_quarter = dataset.train_subset(records[::-1], 0.25)
  assert {r.filename for r in reversed_quarter} == {r.filename for r in quarter}
  first = sum(r.filename < "img_0500.jpg" for r in quarter)
  assert 90 < first < 160  # Spread over the split, not its first images (binomial: 125 +- 8).
  assert dataset.train_subset(records, 1.0) == records
  assert len(dataset.train_subset(records[:3], 0.01)) == 1


def test_load_splits_keeps_the_fraction_of_train_and_all_of_val_and_test(shapes_dir, tmp_path):
  config = demo.get_config("tiny")
  config.data.dir = str(shapes_dir)
  full = dataset.load_splits(config, str(tmp_path))
  config.data.train_fraction = 0.3
  part = dataset.load_splits(config, str(tmp_path))
  assert len(part["train"]) == round(0.3 * len(full["train"]))
  assert set(part["train"]) < set(full["train"])
  assert (part["val"], part["test"]) == (full["val"], full["test"])
  config.data.train_fraction = 1.5
  with pytest.raises(sources.DataError, match=r"^config.data.train_fraction must be in \(0, 1\], "
                     r"got 1.5.$"):
    dataset.load_splits(config, str(tmp_path))
