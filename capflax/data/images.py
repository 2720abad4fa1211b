"""Checks every image can be decoded before training, so TF never meets a bad file.

A full decode of 8,000 Flickr-sized JPEGs costs seconds; JPEGs are decoded in draft mode
(the DCT scaled down 8x), which still reads every byte of the entropy-coded data and so
catches truncation, at a fraction of the cost. Results are cached per file, keyed by a
hash of its bytes (BLAKE2b; reading is far cheaper than decoding), so a rerun on the same
folder decodes only what changed, even a file rewritten with its old size and time. A
cache folder that cannot be written costs a warning, not the run.
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


def _digest(path: str) -> str | None:
  """A hash of the file's bytes; None when it cannot be read (check_file says why)."""
  try:
    with open(path, "rb") as f:
      return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
  except OSError:
    return None


def _save(cache_path: str, cache: dict) -> None:
  try:
    os.makedirs(os.path.dirname(cache_path), exist_ok=True)
    tmp = f"{cache_path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(cache, f)
    os.replace(tmp, cache_path)
  except OSError as e:
    logging.warning("Image-check cache not saved (%s: %s); the next run checks every image "
                    "again. Set $CAPFLAX_CACHE_DIR to a writable folder to keep it.",
                    e.filename or cache_path, e.strerror or e)


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

  with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count()) as pool:
    paths = [r.path for r in records]
    digests = dict(zip(paths, pool.map(_digest, paths)))  # hashlib and PIL release the GIL.
    todo = [p for p in paths if digests[p] is None or cache.get(p, [None])[0] != digests[p]]
    if todo:  # The first run on a folder decodes every image: say so, it can take a while.
      logging.info("Decoding %d of %d images to check them (new or changed since the last "
                   "check%s).", len(todo), len(records),
                   f"; results cached in {cache_path}" if cache_path else "")
    found = dict(zip(todo, pool.map(check_file, todo)))
  for path in todo:
    if digests[path] is not None:
      cache[path] = [digests[path], found[path]]
  if cache_path and found:
    _save(cache_path, cache)
  good, problems = [], []
  for r in records:
    error = found[r.path] if r.path in found else cache[r.path][1]
    if error:
      problems.append(f"{r.path}: {error}")
    else:
      good.append(r)
  return good, problems
