"""Train/val/test splits: the one a layout carries, Flickr8k's official one, or a hash split.

Papers report Flickr8k on the official 6,000/1,000/1,000 split. The original release and
Karpathy's json carry it; the Kaggle download does not, so the official lists ship inside
this package and apply to any folder whose images are mostly Flickr8k's. Images in no
list (91 in the real data) are logged and left out. Any other folder (the synthetic data,
a user's own images) gets the deterministic filename-hash split.
"""

import dataclasses
import os

from absl import logging

from capflax.data import sources

OFFICIAL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flickr8k_splits")
SPLITS = ("train", "val", "test")
HASH_FRACTIONS = {"train": 0.75, "val": 0.125, "test": 0.125}  # configs/demo.py's too.


@dataclasses.dataclass
class Assigned:
  splits: dict[str, list[sources.Record]]
  how: str  # Says where the split came from, for logs and the data check.
  unlisted: list[str]  # Filenames in no split list, left out.


def official_lists() -> dict[str, set[str]]:
  """The official Flickr8k split lists shipped with capflax (train / val=dev / test)."""
  problems: list[str] = []
  lists = {s: sources.read_split_list(os.path.join(OFFICIAL_DIR, f), problems)
           for s, f in sources.ORIGINAL_SPLIT_FILES.items()}
  sources.raise_problems(problems, OFFICIAL_DIR)
  return lists


def _by_lists(records, lists: dict[str, set[str]], how: str) -> Assigned:
  split_of = {name: s for s, names in lists.items() for name in names}
  splits: dict[str, list[sources.Record]] = {s: [] for s in SPLITS}
  unlisted = []
  for r in records:
    if r.filename in split_of:
      splits[split_of[r.filename]].append(r)
    else:
      unlisted.append(r.filename)
  return Assigned(splits, how, unlisted)


def assign(read: sources.Read, records: list[sources.Record],
           fractions: dict[str, float]) -> Assigned:
  """Splits `records` (the valid ones of `read`) as described in the module docstring."""
  if read.splits is not None:
    result = _by_lists(records, read.splits, f"the split in the {read.layout} layout's files")
  else:
    lists = official_lists()
    listed = {n for names in lists.values() for n in names}
    if records and sum(r.filename in listed for r in records) > len(records) / 2:
      result = _by_lists(records, lists, "the official Flickr8k split (lists shipped in "
                         "capflax/data/flickr8k_splits)")
    else:
      return Assigned(sources.hash_split(records, fractions),
                      f"a filename-hash split with fractions {dict(fractions)}", [])
  if result.unlisted:
    shown = ", ".join(result.unlisted[:5]) + (", ..." if len(result.unlisted) > 5 else "")
    logging.warning("%s: %d image(s) in no split list, left out: %s", read.data_dir,
                    len(result.unlisted), shown)
  return result
