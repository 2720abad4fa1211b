"""From `config.data` to split records and the vocabulary: where the data comes from."""

import dataclasses
import hashlib
import os

import jax
import ml_collections
from absl import logging
from etils import epath

from capflax import run_files
from capflax.data import images, scene_file, sources, splits, synthetic, tfds_source
from capflax.data.tokenizer import Vocabulary

FLICKR8K_HINT = (
    "Download Flickr8k (Kaggle: kaggle.com/datasets/adityajn105/flickr8k, giving Images/ and "
    "captions.txt; or the original University of Illinois release, giving Flicker8k_Dataset/ "
    "and Flickr8k_text/) and pass its folder with --config.data.dir=DIR.")
POLICIES = ("error", "skip")
VOCAB_FILE = "vocab.json"


def resolve_dir(config: ml_collections.ConfigDict, workdir: str) -> str:
  """`data.dir`, or the built-in synthetic data generated into the workdir when absent.

  A TFDS layout gives the folder it is exported to: `data.dir`, else WORKDIR/tfds_export.
  A run started from another's weights (`init_from_workdir`) without a `data.dir` reads that
  run's data, so that it trains on what its parent did, with the same vocabulary.
  """
  d = config.data
  if not d.dir and config.get("init_from_workdir"):
    return _parent_data(config.init_from_workdir)
  if tfds_source.is_tfds(d.layout) and (d.dir or "://" not in workdir):
    return tfds_source.export(d.layout, d.tfds_data_dir,
                              d.dir or os.path.join(workdir, "tfds_export"))
  if d.dir:
    return d.dir
  if "://" in workdir and (d.synthetic_images or tfds_source.is_tfds(d.layout)):
    # The readers, the generator and the TFDS export work on local files only.
    raise sources.DataError(f"--workdir={workdir} is not local, so the data cannot be "
                            f"{'exported' if tfds_source.is_tfds(d.layout) else 'generated'} "
                            f"into it; set --config.data.dir to a local folder.")
  if d.synthetic_images:
    out = os.path.join(workdir, "synthetic_data")
    if not os.path.exists(os.path.join(out, sources.KAGGLE_CAPTIONS)):
      logging.info("Generating %d synthetic images (%r set) into %s.", d.synthetic_images,
                   d.synthetic_set, out)
      synthetic.generate(out, d.synthetic_images, d.synthetic_image_size, d.synthetic_seed,
                         scene_set=d.synthetic_set)
    return out
  raise sources.DataError(f"config.data.dir is not set. {FLICKR8K_HINT}")


def _parent_data(parent: str) -> str:
  """The data folder of the run in `parent`: its data.dir, or what it generated or exported
  into its workdir (or, for a run itself started from another, that one's)."""
  config = run_files.load_config(parent)
  d = config.data
  if d.dir:
    return d.dir
  if config.get("init_from_workdir"):
    return _parent_data(config.init_from_workdir)
  out = os.path.join(parent, "tfds_export" if tfds_source.is_tfds(d.get("layout", ""))
                     else "synthetic_data")
  if not os.path.isdir(out):
    raise sources.DataError(f"config.init_from_workdir={parent}: its data folder {out} is "
                            f"missing; set config.data.dir to the data that run trained on.")
  return out


def scene_truth(config: ml_collections.ConfigDict, workdir: str) -> scene_file.Truth | None:
  """The data folder's scene truth (`scenes.json`), or None when it has none."""
  truth = scene_file.read(resolve_dir(config, workdir))
  if truth is not None:
    logging.info("Scene truth of %d images: captions are scored against it too.",
                 len(truth.scenes))
  return truth


@dataclasses.dataclass
class Loaded:
  read: sources.Read
  assigned: splits.Assigned
  problems: list[str]  # Caption-file problems, then image problems; their rows are left out.


def load(data_dir: str, *, layout: str = "", fractions=splits.HASH_FRACTIONS) -> Loaded:
  """Reads any layout, checks every image decodes, and splits what is valid."""
  read = sources.read(data_dir, layout)
  for warning in read.warnings[:20]:
    logging.warning("%s", warning)
  if len(read.warnings) > 20:
    logging.warning("... and %d more warnings (python -m capflax.data.check lists them all).",
                    len(read.warnings) - 20)
  valid, image_problems = images.check(read.records, cache_name=data_dir)
  return Loaded(read, splits.assign(read, valid, dict(fractions)),
                read.problems + image_problems)


def apply_policy(problems: list[str], policy: str, data_dir: str) -> None:
  """'error': one DataError listing every problem; 'skip': log each, and the count."""
  if policy not in POLICIES:
    raise sources.DataError(f"config.data.on_bad_example must be one of {POLICIES}, "
                            f"got {policy!r}.")
  if policy == "error":
    sources.raise_problems(problems, data_dir)
  for p in problems:
    logging.warning("Skipped: %s", p)
  if problems:
    logging.warning("Skipped %d bad example(s) in %s (config.data.on_bad_example='skip').",
                    len(problems), data_dir)


def load_splits(config: ml_collections.ConfigDict, workdir: str) -> dict[str, list[sources.Record]]:
  data_dir = resolve_dir(config, workdir)
  d = config.data
  layout = "karpathy" if tfds_source.is_tfds(d.layout) else d.layout
  loaded = load(data_dir, layout=layout, fractions=d.split_fractions)
  apply_policy(loaded.problems, d.on_bad_example, data_dir)
  logging.info("%s: %s layout; %s.", data_dir, loaded.read.layout, loaded.assigned.how)
  result = dict(loaded.assigned.splits)
  fraction = d.train_fraction
  if fraction != 1.0:
    result["train"] = train_subset(result["train"], fraction)
    logging.info("train: keeping %d of %d images (config.data.train_fraction=%s).",
                 len(result["train"]), len(loaded.assigned.splits["train"]), fraction)
  for name, recs in result.items():
    logging.info("%s: %d images, %d captions (%s).", name, len(recs),
                 sum(len(r.captions) for r in recs), data_dir)
    if not recs:
      raise sources.DataError(f"{data_dir}: split {name!r} is empty; more images are needed.")
  return result


def train_subset(records: list[sources.Record], fraction: float) -> list[sources.Record]:
  """`round(fraction * n)` (at least 1) of the train images, for data-scaling experiments.

  The images kept are the first in an order fixed by a hash of each filename, so the subsets
  are nested (a smaller fraction keeps part of a larger one's images), spread over the whole
  split and independent of the folder's listing order. The kept records keep their split
  order; the vocabulary is then built from their captions alone.
  """
  if not 0.0 < fraction <= 1.0:
    raise sources.DataError(f"config.data.train_fraction must be in (0, 1], got {fraction!r}.")
  keep = max(1, round(fraction * len(records)))
  rank = sorted(range(len(records)), key=lambda i: hashlib.sha256(
      b"train_fraction:" + records[i].filename.encode()).digest())
  kept = set(rank[:keep])
  return [r for i, r in enumerate(records) if i in kept]


def saved_vocabulary(workdir: str) -> Vocabulary | None:
  """WORKDIR/vocab.json, None if there is none; a damaged one is a DataError naming it."""
  path = epath.Path(workdir) / VOCAB_FILE
  if not path.exists():
    return None
  try:
    return Vocabulary.load(path)
  except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
    raise sources.DataError(f"{path}: not a readable vocabulary ({type(e).__name__}: {e}); "
                            f"restore it (its checkpoints need the very same ids).") from None


def vocabulary(config: ml_collections.ConfigDict, workdir: str,
               train: list[sources.Record]) -> Vocabulary:
  """The workdir's saved vocabulary, or a new one from the train captions (then saved)."""
  path = epath.Path(workdir) / VOCAB_FILE
  vocab = saved_vocabulary(workdir)
  if vocab is not None:
    logging.info("Loaded the vocabulary of %d tokens from %s.", len(vocab), path)
    return vocab
  vocab = Vocabulary.build((c for r in train for c in r.captions), config.data.min_count)
  if jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    vocab.save(path)
  logging.info("Built a vocabulary of %d tokens (min count %d) from the train captions.",
               len(vocab), config.data.min_count)
  return vocab
