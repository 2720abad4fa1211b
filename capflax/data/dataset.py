"""From `config.data` to split records and the vocabulary: where the data comes from."""

import os

import jax
import ml_collections
from absl import logging

from capflax.data import sources, synthetic
from capflax.data.tokenizer import Vocabulary

FLICKR8K_HINT = (
    "Download Flickr8k (Kaggle: kaggle.com/datasets/adityajn105/flickr8k, giving Images/ and "
    "captions.txt) and pass its folder with --config.data.dir=DIR.")
VOCAB_FILE = "vocab.json"


def resolve_dir(config: ml_collections.ConfigDict, workdir: str) -> str:
  """`data.dir`, or the built-in synthetic data generated into the workdir when absent."""
  d = config.data
  if d.dir:
    return d.dir
  if d.synthetic_images:
    out = os.path.join(workdir, "synthetic_data")
    if not os.path.exists(os.path.join(out, sources.KAGGLE_CAPTIONS)):
      logging.info("Generating %d synthetic images into %s.", d.synthetic_images, out)
      synthetic.generate(out, d.synthetic_images, d.synthetic_image_size, d.synthetic_seed)
    return out
  raise sources.DataError(f"config.data.dir is not set. {FLICKR8K_HINT}")


def load_splits(config: ml_collections.ConfigDict, workdir: str) -> dict[str, list[sources.Record]]:
  data_dir = resolve_dir(config, workdir)
  records = sources.read_kaggle(data_dir)
  splits = sources.hash_split(records, dict(config.data.split_fractions))
  for name, recs in splits.items():
    logging.info("%s: %d images, %d captions (%s).", name, len(recs),
                 sum(len(r.captions) for r in recs), data_dir)
    if not recs:
      raise sources.DataError(f"{data_dir}: split {name!r} is empty; more images are needed.")
  return splits


def vocabulary(config: ml_collections.ConfigDict, workdir: str,
               train: list[sources.Record]) -> Vocabulary:
  """The workdir's saved vocabulary, or a new one from the train captions (then saved)."""
  path = os.path.join(workdir, VOCAB_FILE)
  if os.path.exists(path):
    vocab = Vocabulary.load(path)
    logging.info("Loaded the vocabulary of %d tokens from %s.", len(vocab), path)
    return vocab
  vocab = Vocabulary.build((c for r in train for c in r.captions), config.data.min_count)
  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    vocab.save(path)
  logging.info("Built a vocabulary of %d tokens (min count %d) from the train captions.",
               len(vocab), config.data.min_count)
  return vocab
