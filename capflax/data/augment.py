"""Train-time image augmentation that never contradicts a caption, and replays exactly.

Every random choice is a stateless op seeded by (seed, element index), so a resumed run
augments each example exactly as an uninterrupted one would. Cropping keeps most of the
image and colour jitter is mild, so what a caption names stays visible and keeps its
colour; a horizontal flip is skipped for any caption that says left or right.
"""

import dataclasses

import ml_collections
import numpy as np
import tensorflow as tf

from capflax.data.tokenizer import words

SIDE_WORDS = frozenset({"left", "right", "lefthand", "righthand", "leftmost", "rightmost",
                        "leftward", "rightward"})


@dataclasses.dataclass(frozen=True)
class Augment:
  crop_min_area: float = 1.0  # Random resized crop keeping >= this fraction; 1: no crop.
  color_jitter: float = 0.0  # Max relative change of brightness/contrast/saturation; 0: none.
  flip: bool = False  # Horizontal flip with probability 1/2 where the caption allows it.

  @classmethod
  def from_config(cls, c: ml_collections.ConfigDict) -> "Augment":
    if not 0.0 < c.crop_min_area <= 1.0 or not 0.0 <= c.color_jitter < 1.0:
      raise ValueError(f"config.data.augment: need 0 < crop_min_area <= 1 and "
                       f"0 <= color_jitter < 1, got {c.crop_min_area}, {c.color_jitter}.")
    return cls(float(c.crop_min_area), float(c.color_jitter), bool(c.flip))

  @property
  def active(self) -> bool:
    return self.crop_min_area < 1.0 or self.color_jitter > 0.0 or self.flip


def flippable(caption: str) -> bool:
  """False when mirroring the image would make the caption wrong."""
  return not SIDE_WORDS.intersection(words(caption))


def flippable_mask(captions: list[str]) -> np.ndarray:
  return np.array([flippable(c) for c in captions], bool)  # [pairs]


def crop_and_resize(image: tf.Tensor, size: int, aug: Augment, seed: tf.Tensor) -> tf.Tensor:
  """[h, w, 3] uint8 -> [size, size, 3] float32 in [0, 255], randomly cropped first."""
  if aug.crop_min_area < 1.0:
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(aug.crop_min_area, 1.0), use_image_if_no_bounding_boxes=True)
    image = tf.slice(image, begin, extent)  # [h', w', 3]
  return tf.image.resize(image, (size, size), antialias=True)  # [size, size, 3]


def colour_and_flip(image: tf.Tensor, aug: Augment, seeds: tf.Tensor,
                    may_flip: tf.Tensor) -> tf.Tensor:
  """[s, s, 3] float32 in [0, 255] -> the same, jittered and maybe mirrored."""
  if aug.color_jitter > 0.0:
    j = aug.color_jitter
    image = image / 255.0
    image = tf.image.stateless_random_brightness(image, j, seed=seeds[0])
    image = tf.image.stateless_random_contrast(image, 1.0 - j, 1.0 + j, seed=seeds[1])
    image = tf.image.stateless_random_saturation(image, 1.0 - j, 1.0 + j, seed=seeds[2])
    image = tf.clip_by_value(image, 0.0, 1.0) * 255.0
  if aug.flip:
    coin = tf.random.stateless_uniform([], seed=seeds[3]) < 0.5
    image = tf.cond(tf.logical_and(may_flip, coin), lambda: image[:, ::-1], lambda: image)
  return image
