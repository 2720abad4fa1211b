"""A frozen encoder's image tokens, computed once per train image and stored in the workdir.

With `model.encoder.frozen=True` and no augmentation, the encoder computes the same
tokens for an image at every step; `data.cache_features=True` runs it once per image (in
the model's compute dtype: bfloat16 tokens for a bfloat16 model, float32 for float32, so
a float32 run trains on the very numbers the uncached one computes) and the train step
then reads [b, n, c] tokens instead of images. Each host writes its own file under
WORKDIR/features/, named by a hash of everything the tokens depend on (encoder config,
weights file, image size, dtype, the image list), so a resumed run reuses it and a
changed config never does. The file is a raw array written to a temporary name and
renamed when complete, memory-mapped when read.
"""

import hashlib
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from etils import epath

from capflax import evaluation, sharding
from capflax.data import augment, pipeline, sources
from capflax.errors import ConfigError


def check(config: ml_collections.ConfigDict) -> None:
  """Caching is exact only for a frozen encoder that sees each image the same way."""
  if not config.data.cache_features:
    return
  if not config.model.encoder.frozen:
    raise ConfigError("config.data.cache_features needs model.encoder.frozen=True (a trained "
                      "encoder's tokens change every step).")
  if augment.Augment.from_config(config.data.augment).active:
    raise ConfigError("config.data.cache_features needs data.augment off (crop_min_area=1, "
                      "color_jitter=0, flip=False): augmented images change every epoch.")


def _key(config, records) -> str:
  enc = config.model.encoder.to_dict()
  enc.pop("frozen", None)
  what = {"encoder": enc, "image_size": config.data.image_size, "dtype": config.model.dtype,
          "images": [r.path for r in records]}
  return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def features(config: ml_collections.ConfigDict, workdir: str, records: list[sources.Record],
             model, variables: dict, mesh) -> np.ndarray:
  """[images, n, c] encoder tokens of `records`, computed now or read from an earlier run."""
  folder = epath.Path(workdir) / "features"
  folder.mkdir(parents=True, exist_ok=True)
  stem = folder / f"host{jax.process_index()}_{_key(config, records)}"
  meta_path = epath.Path(f"{stem}.json")
  if meta_path.exists():
    meta = json.loads(meta_path.read_text())
    logging.info("Reading cached encoder tokens from %s.npy.", stem)
    return np.memmap(f"{stem}.npy", dtype=jnp.dtype(meta["dtype"]), mode="r",
                     shape=tuple(meta["shape"]))

  encode = jax.jit(lambda v, images: model.apply(v, images, method=type(model).features),
                   in_shardings=(None, sharding.batch_sharding(mesh)),
                   out_shardings=sharding.replicated(mesh))
  batch = config.eval.batch_size
  stream = pipeline.eval_dataset(records, image_size=config.data.image_size, global_batch=batch,
                                 host=evaluation.host_slice())
  out, done = None, 0
  tmp = f"{stem}.npy.tmp"
  for local in stream:  # Each host encodes its slice; every host stores all of them.
    images = sharding.global_batch({"image": local["image"]}, mesh)["image"]
    tokens = np.asarray(encode(variables, images))  # [global batch, n, c], padded at the end
    if out is None:
      out = np.memmap(tmp, dtype=tokens.dtype, mode="w+",
                      shape=(len(records),) + tokens.shape[1:])  # [images, n, c]
    take = min(len(records) - done, len(tokens))
    out[done:done + take] = tokens[:take]
    done += take
    logging.log_every_n_seconds(logging.INFO, "Encoding train images: %d / %d.", 30, done,
                                len(records))
  out.flush()
  os.replace(tmp, f"{stem}.npy")
  meta_path.write_text(json.dumps({"dtype": out.dtype.name, "shape": list(out.shape)}))
  logging.info("Cached the encoder tokens of %d train images (%s, %.1f MB) in %s.npy.",
               len(records), out.dtype.name, out.nbytes / 1e6, stem)
  return np.memmap(f"{stem}.npy", dtype=out.dtype, mode="r", shape=out.shape)
