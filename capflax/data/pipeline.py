"""tf.data input pipelines: train (index-addressed, resumable) and eval (ordered, padded).

The train stream is a pure function of (seed, global element index): element g of the
stream is unit `index_shuffle(g mod N)` of epoch `g div N`. A resumed run starts at
the element its checkpoint records (the data position) and sees exactly what an
uninterrupted run would, with no skipping through data, whatever its batch size; augmentation (`augment.py`) is seeded by the
same index, so it replays exactly too. Each host reads only its own slice of every
global batch.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from capflax.data import augment as augment_lib
from capflax.data import sources
from capflax.data.tokenizer import Vocabulary

# config.data.captions_per_image: every (image, caption) pair per epoch; one caption per
# image; or every image once with a group of its captions, decoded against one encoding.
CAPTIONS_PER_IMAGE = ("all", "one", "group")

tf.config.set_visible_devices([], "GPU")  # TF only feeds the accelerators JAX owns.


@dataclasses.dataclass(frozen=True)
class HostSlice:
  """Which part of each global batch this process reads."""
  index: int = 0
  count: int = 1


def epoch_elements(records: list[sources.Record], captions_per_image: str) -> int:
  """Elements per epoch of the train stream: (image, caption) pairs with 'all', else images."""
  return sum(len(r.captions) for r in records) if captions_per_image == "all" else len(records)


def _host_elements(num_batches, global_batch: int, host: HostSlice, first_element: int = 0):
  """Global element indices of this host's share of the batches that start at
  `first_element`."""
  local = global_batch // host.count
  start = lambda b: first_element + b * global_batch + host.index * local
  return tf.data.Dataset.range(num_batches).flat_map(
      lambda b: tf.data.Dataset.range(start(b), start(b) + local))


def _decode(path: tf.Tensor) -> tf.Tensor:
  """Any checked image (grey, palette, alpha too) -> [h, w, 3] uint8 RGB."""
  return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def _to_uint8(image: tf.Tensor) -> tf.Tensor:
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)  # [s, s, 3]


def _resize(image: tf.Tensor, image_size) -> tf.Tensor:
  image = tf.image.resize(image, tf.stack([image_size, image_size]), antialias=True)
  return _to_uint8(image)  # [s, s, 3]


# One graph for every image size: prediction and serving resize one photo at a time.
resize = tf.function(_resize, input_signature=(tf.TensorSpec([None, None, 3], tf.uint8),
                                               tf.TensorSpec([], tf.int32)))
resize.__doc__ = "[h, w, 3] uint8 -> [s, s, 3] uint8, exactly as evaluation's input pipeline."


def _load_image(path: tf.Tensor, image_size: int) -> tf.Tensor:
  return _resize(_decode(path), image_size)  # [s, s, 3]


def encode_captions(records: list[sources.Record], vocab: Vocabulary, max_len: int):
  """Token rows for every (image, caption) pair, and each image's first row and count."""
  rows = [vocab.encode(c, max_len) for r in records for c in r.captions]
  counts = np.array([len(r.captions) for r in records], np.int64)
  first = np.concatenate([[0], np.cumsum(counts)[:-1]])
  return np.stack(rows), first, counts  # [pairs, max_len + 2], [images], [images]


def train_dataset(records: list[sources.Record], vocab: Vocabulary, *, image_size: int,
                  max_len: int, global_batch: int, seed: int, start_element: int = 0,
                  captions_per_image: str = "all", group_size: int = 5,
                  host: HostSlice = HostSlice(),
                  augment: augment_lib.Augment = augment_lib.Augment(),
                  image_index: bool = False, images: bool = True):
  """Endless iterator of {'image': [b, s, s, 3] uint8, 'tokens': [b, max_len + 2] int32}
  ('group': tokens [b, group_size, max_len + 2]).

  image_index: also give each example's index into `records` ('image_index': [b] int64), for
  a step that reads its references (SCST) or, with `images=False` instead of the image, its
  stored encoder tokens.

  captions_per_image: 'all' walks every (image, caption) pair once per epoch; 'one'
  walks every image once per epoch with one of its captions drawn at random; 'group' walks
  every image once per epoch with `group_size` of its captions in random order (distinct
  while it has that many, cycling through them when it has fewer), as self-critical.pytorch's
  seq_per_img: the step encodes each image once and decodes all of them.
  augment: applied to each (image, caption) pair; no flip where the caption says left/right.
  start_element: the data position, elements (pairs or images) already consumed.
  """
  if global_batch % host.count:
    raise ValueError(f"global batch {global_batch} is not divisible by {host.count} hosts.")
  if captions_per_image not in CAPTIONS_PER_IMAGE:
    raise ValueError(f"data.captions_per_image must be one of {CAPTIONS_PER_IMAGE}, got "
                     f"{captions_per_image!r}.")
  local = global_batch // host.count
  tokens, first, counts = encode_captions(records, vocab, max_len)
  paths = tf.constant([r.path for r in records])
  pair_image = tf.constant(np.repeat(np.arange(len(records)), counts))
  tokens, first, counts = tf.constant(tokens), tf.constant(first), tf.constant(counts)
  may_flip = tf.constant(augment_lib.flippable_mask([c for r in records for c in r.captions]))
  units = epoch_elements(records, captions_per_image)

  def element(g):
    epoch, pos = g // units, g % units
    unit = tf.random.experimental.index_shuffle(
        pos, seed=tf.stack([tf.constant(seed, tf.int64), epoch]), max_index=units - 1)
    rng = tf.stack([tf.constant(seed, tf.int64), g])
    if captions_per_image == "all":
      pair = unit
    elif captions_per_image == "group":  # [group_size]
      pair = first[unit] + tf.random.experimental.index_shuffle(
          tf.range(group_size, dtype=tf.int64) % counts[unit], seed=rng,
          max_index=counts[unit] - 1)
    else:
      pick = tf.random.stateless_uniform([], seed=rng, maxval=counts[unit], dtype=tf.int64)
      pair = first[unit] + pick
    image = unit if captions_per_image == "group" else pair_image[pair]
    out = {"tokens": tf.gather(tokens, pair)} | ({"image_index": image} if image_index else {})
    if not images:
      return out
    path = paths[image]
    if not augment.active:
      return out | {"image": _load_image(path, image_size)}
    # [5, 2]: independent seeds for crop, brightness, contrast, saturation, flip.
    seeds = tf.random.experimental.stateless_split(rng, num=5)
    image = augment_lib.crop_and_resize(_decode(path), image_size, augment, seeds[0])
    image = augment_lib.colour_and_flip(image, augment, seeds[1:],
                                        tf.reduce_all(tf.gather(may_flip, pair)))
    return out | {"image": _to_uint8(image)}

  ds = _host_elements(np.iinfo(np.int64).max // (2 * global_batch), global_batch, host,
                      start_element)
  ds = ds.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(local, drop_remainder=True).prefetch(2).as_numpy_iterator()


def eval_dataset(records: list[sources.Record], *, image_size: int, global_batch: int,
                 host: HostSlice = HostSlice()):
  """Every record once, in order, as {'image', 'index': [b] int, 'mask': [b] bool}.

  The last global batch is padded (mask False) so every host runs the same number of
  batches; `index` points back into `records` for the references.
  """
  local = global_batch // host.count
  num_batches = -(-len(records) // global_batch)
  paths = tf.constant([r.path for r in records])
  n = len(records)

  def element(g):
    index = tf.minimum(g, n - 1)
    return {"image": _load_image(paths[index], image_size), "index": index, "mask": g < n}

  ds = _host_elements(num_batches, global_batch, host)
  ds = ds.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(local).prefetch(2).as_numpy_iterator()
