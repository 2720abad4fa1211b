"""Built-in captioning data: scenes of coloured shapes in the Kaggle Flickr8k layout.

Lets every config run with nothing downloaded. The output is exactly what the Kaggle
download looks like (`DIR/Images/*.jpg` + `DIR/captions.txt`), so it is read back by
the same reader as real Flickr8k, plus `DIR/scenes.json`: the truth of every image and
the words the captions use for it (capflax/data/scene_file.py), against which generated
captions are scored. Everything is a function of the seed, image by image.

Sets (`config.data.synthetic_set`), each a module with LEXICON, RELATION_GAP and
sample(rng) -> objects, render(objects, side, rng) -> image, captions(objects, rng):
  'scenes': the diagnostic set (synthetic_scenes.py): 8 shapes with look-alikes, 3 sizes,
            1-3 objects, textured backgrounds.
  'shapes': the first, easy set (synthetic_shapes.py): 4 shapes, 1-2 objects.
"""

import concurrent.futures
import contextlib
import csv
import multiprocessing as mp
import os

import numpy as np

from capflax.data import scene_file, scene_layout, synthetic_scenes, synthetic_shapes

SETS = {"scenes": synthetic_scenes, "shapes": synthetic_shapes}
CHUNK = 250  # Images per task of a worker process.


def get_set(name: str):
  if name not in SETS:
    raise ValueError(f"config.data.synthetic_set: unknown set {name!r} (available: "
                     f"{', '.join(map(repr, SETS))}).")
  return SETS[name]


def _chunk(args) -> list[tuple[str, list[str], scene_file.Scene]]:
  """Images [start, stop): rendered, saved, and their (name, captions, scene)."""
  images_dir, start, stop, image_size, seed, scene_set = args
  kind = get_set(scene_set)
  out = []
  for i in range(start, stop):
    rng = np.random.default_rng([seed, i])  # Per image: any subset regenerates identically.
    objects = kind.sample(rng)
    name = f"shapes_{i:06d}.jpg"
    kind.render(objects, image_size, rng).save(os.path.join(images_dir, name), quality=92)
    out.append((name, kind.captions(objects, rng),
                scene_file.Scene(tuple(o.truth() for o in objects),
                                 scene_layout.relations(objects, gap=kind.RELATION_GAP))))
  return out


def generate(out_dir: str, num_images: int = 4000, image_size: int = 128, seed: int = 0,
             log_every: int = 1000, scene_set: str = "scenes", workers: int = 0) -> str:
  """Writes `out_dir/Images/*.jpg`, `captions.txt` and `scenes.json`; returns out_dir.

  Images are drawn in chunks by `workers` processes (0: one per CPU core), each image from
  its own seed, so the files do not depend on the number of workers. The workers are
  spawned, so a script that calls this needs Python's `if __name__ == "__main__":` guard."""
  from absl import logging  # Deferred: keeps this module importable without absl set up.
  kind = get_set(scene_set)
  images_dir = os.path.join(out_dir, "Images")
  os.makedirs(images_dir, exist_ok=True)
  workers = min(workers or os.cpu_count() or 1, max(1, num_images // CHUNK))
  chunks = [(images_dir, a, min(a + CHUNK, num_images), image_size, seed, scene_set)
            for a in range(0, num_images, CHUNK)]
  rows, scenes = [], {}
  # 'spawn': the workers need numpy and PIL only, not the parent's JAX threads.
  with (concurrent.futures.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        if workers > 1 else contextlib.nullcontext()) as pool:
    done = 0
    for part in (pool.map(_chunk, chunks) if pool else map(_chunk, chunks)):
      for name, texts, scene in part:
        rows.extend((name, c) for c in texts)
        scenes[name] = scene
      if log_every and (done + len(part)) // log_every > done // log_every:
        logging.info("Generated %d/%d synthetic images.", done + len(part), num_images)
      done += len(part)
  scene_file.write(os.path.join(out_dir, scene_file.FILE), kind.LEXICON, scenes)
  tmp = os.path.join(out_dir, "captions.txt.tmp")
  with open(tmp, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(["image", "caption"])
    writer.writerows(rows)
  os.replace(tmp, os.path.join(out_dir, "captions.txt"))  # Last: marks the folder complete.
  return out_dir
