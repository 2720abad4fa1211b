"""Checks a data folder before you spend accelerator hours on it.

    python -m capflax.data.check --data_dir=/path/to/flickr8k

Prints the detected layout, where the split comes from, images and captions per split,
the vocabulary size, and every problem found (file and line). Exits 0 only when clean.
"""

import sys

from absl import app, flags, logging

from capflax import cli
from capflax.data import dataset, sources
from capflax.data.tokenizer import SPECIALS, Vocabulary

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "The folder to check (Kaggle, original Flickr8k release "
                    "or Karpathy json layout; detected).")
flags.DEFINE_string("layout", "", "Force a layout: kaggle, original or karpathy ('' detects).")
flags.DEFINE_integer("min_count", 5, "Vocabulary: train-caption words seen at least this often.",
                     lower_bound=1)
flags.DEFINE_list("split_fractions", ["train=0.75", "val=0.125", "test=0.125"],
                  "Hash split for folders that are not Flickr8k and carry no split.")
flags.mark_flag_as_required("data_dir")


def report(data_dir: str, layout: str, min_count: int, fractions: dict[str, float]) -> int:
  """Prints the report; returns the number of problems (a fatal one counts as one)."""
  try:
    loaded = dataset.load(data_dir, layout=layout, fractions=fractions)
  except sources.DataError as e:
    print(f"problem: {e}")
    return 1
  print(f"layout: {loaded.read.layout} ({data_dir})")
  print(f"split: {loaded.assigned.how}")
  for name, records in loaded.assigned.splits.items():
    print(f"{name}: {len(records)} images, {sum(len(r.captions) for r in records)} captions")
  if loaded.assigned.unlisted:
    print(f"left out: {len(loaded.assigned.unlisted)} images in no split list "
          f"(e.g. {loaded.assigned.unlisted[0]})")
  train = loaded.assigned.splits.get("train", [])
  vocab = Vocabulary.build((c for r in train for c in r.captions), min_count)
  print(f"vocabulary: {len(vocab) - len(SPECIALS)} words at min count {min_count} "
        f"(+{len(SPECIALS)} special tokens)")
  warnings = loaded.read.warnings
  print(f"warnings: {len(warnings)} (repeated captions: "
        f"{sum('repeated caption' in w for w in warnings)}, outlier-length captions: "
        f"{sum('a caption of' in w for w in warnings)})")
  for w in warnings:
    print(f"  {w}")
  problems = list(loaded.problems)
  problems += [f"{data_dir}: split {name!r} is empty." for name, records
               in loaded.assigned.splits.items() if not records]
  print(f"problems: {len(problems)}")
  for p in problems:
    print(f"  {p}")
  return len(problems)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.ERROR)  # The report says it all.
  try:
    fractions = {k: float(v) for k, v in (f.split("=") for f in FLAGS.split_fractions)}
  except ValueError:
    raise app.UsageError(f"--split_fractions: expected name=fraction,..., got "
                         f"{','.join(FLAGS.split_fractions)}") from None
  if not all(0 <= f <= 1 for f in fractions.values()) or not sum(fractions.values()) > 0:
    raise app.UsageError(f"--split_fractions: fractions must be in [0, 1], not all 0; got "
                         f"{','.join(FLAGS.split_fractions)}")
  sys.exit(1 if report(FLAGS.data_dir, FLAGS.layout, FLAGS.min_count, fractions) else 0)


if __name__ == "__main__":
  cli.run(main, "capflax.data.check")
