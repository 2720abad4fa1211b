"""Checks every image can be decoded before training, so TF never meets a bad file.

A full decode of 8,000 Flickr-sized JPEGs costs seconds; JPEGs are decoded in draft mode
(the DCT scaled down 8x), which still reads every byte of the entropy-coded data and so
catches truncation, at a fraction of the cost. Results are cached per file (keyed by
size and modification time) so a rerun on the same folder checks only what changed.
"""

import concurrent.futures
import hashlib
import json
import os

from absl import logging
from PIL import Image

from capflax.data import sources

# What `tf.io.decode_image` reads; grey, palette and alpha images are fine (-> RGB).
FORMATS = ("JPEG", "PNG", "GIF", "BMP")
JPEG_MODES = ("L", "RGB")  # TF's JPEG decoder cannot give RGB from CMYK or YCCK.


def cache_dir() -> str:
  """$CAPFLAX_CACHE_DIR, else $XDG_CACHE_HOME/capflax, else ~/.cache/capflax."""
  if os.environ.get("CAPFLAX_CACHE_DIR"):
    return os.environ["CAPFLAX_CACHE_DIR"]
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "capflax")


def check_file(path: str) -> str:
  """'' when `path` decodes as an image TF can read, else why not."""
  try:
    with Image.open(path) as image:
      if image.format not in FORMATS:
        return f"{image.format} images are not supported (use one of {', '.join(FORMATS)})."
      if image.format == "JPEG":
        if image.mode not in JPEG_MODES:
          return f"a {image.mode} JPEG, which cannot be decoded to RGB; convert it to RGB."
        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
      image.load()
  except FileNotFoundError:
    return "missing image file."
  except Exception as e:  # PIL raises many types (OSError, SyntaxError, ...) for bad files.
    return f"corrupt or truncated image ({type(e).__name__}: {e})."
  return ""


def check(records: list[sources.Record], cache_name: str = "",
          workers: int | None = None) -> tuple[list[sources.Record], list[str]]:
  """(records whose image decodes, one problem per record whose image does not)."""
  cache_path = ""
  cache: dict[str, list] = {}
  if cache_name:
    key = hashlib.sha256(os.path.abspath(cache_name).encode()).hexdigest()[:16]
    cache_path = os.path.join(cache_dir(), f"image_check_{key}.json")
    try:
      with open(cache_path, encoding="utf-8") as f:
        cache = json.load(f)
    except (OSError, ValueError):
      cache = {}

  def stamp(path):
    try:
      st = os.stat(path)
      return [st.st_size, st.st_mtime_ns]
    except OSError:
      return None

  stamps = [stamp(r.path) for r in records]
  todo = [r.path for r, s in zip(records, stamps)
          if s is None or cache.get(r.path, [None])[:2] != s]
  if todo:  # The first run on a folder decodes every image: say so, it can take a while.
    logging.info("Decoding %d of %d images to check them (new or changed since the last "
                 "check%s).", len(todo), len(records),
                 f"; results cached in {cache_path}" if cache_path else "")
  with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
    found = dict(zip(todo, pool.map(check_file, todo)))  # PIL decodes without the GIL.
  for path, s in zip((r.path for r in records), stamps):
    if path in found and s is not None:
      cache[path] = s + [found[path]]
  if cache_path and found:
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    tmp = f"{cache_path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(cache, f)
    os.replace(tmp, cache_path)
  good, problems = [], []
  for r in records:
    error = found[r.path] if r.path in found else cache[r.path][2]
    if error:
      problems.append(f"{r.path}: {error}")
    else:
      good.append(r)
  return good, problems
