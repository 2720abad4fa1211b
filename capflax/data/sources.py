"""Reads a captioning folder into (image, references) records, validating as it goes.

The Kaggle Flickr8k layout is `DIR/Images/*.jpg` + `DIR/captions.txt` (CSV, header
`image,caption`, captions with commas double-quoted). The built-in synthetic data is
written in the same layout, so one reader serves both. Problems are collected and
reported together, each naming its file and line, before any training starts.
"""

import csv
import dataclasses
import hashlib
import os

import numpy as np


class DataError(ValueError):
  """Bad input data; the message lists every problem found."""


@dataclasses.dataclass(frozen=True)
class Record:
  filename: str  # e.g. '1000268201_693b08cb0e.jpg': the image id used in results.
  path: str
  captions: tuple[str, ...]


KAGGLE_CAPTIONS, KAGGLE_IMAGES = "captions.txt", "Images"


def read_kaggle(data_dir: str) -> list[Record]:
  """All records of a Kaggle-layout folder, in first-appearance order."""
  captions_path = os.path.join(data_dir, KAGGLE_CAPTIONS)
  images_dir = os.path.join(data_dir, KAGGLE_IMAGES)
  if not os.path.isdir(data_dir):
    raise DataError(f"{data_dir}: no such folder (expected {KAGGLE_IMAGES}/ and {KAGGLE_CAPTIONS}).")
  for path, kind in ((captions_path, "file"), (images_dir, "folder")):
    if not os.path.exists(path):
      raise DataError(f"{path}: missing {kind}; a Kaggle-layout folder holds "
                      f"{KAGGLE_IMAGES}/ and {KAGGLE_CAPTIONS}.")
  present = set(os.listdir(images_dir))
  captions: dict[str, list[str]] = {}
  problems: list[str] = []
  try:
    with open(captions_path, encoding="utf-8", newline="") as f:
      rows = list(csv.reader(f))
  except UnicodeDecodeError as e:
    raise DataError(f"{captions_path}: not UTF-8 text ({e.reason} at byte {e.start}).") from None
  if not rows or [c.strip().lower() for c in rows[0]] != ["image", "caption"]:
    raise DataError(f"{captions_path}:1: expected the header 'image,caption', "
                    f"got {','.join(rows[0]) if rows else 'an empty file'!r}.")
  for line, row in enumerate(rows[1:], start=2):
    if not row:
      continue  # Blank lines (e.g. a trailing newline) carry nothing.
    if len(row) != 2:
      problems.append(f"{captions_path}:{line}: expected 2 fields 'image,caption', got {len(row)}.")
      continue
    image, caption = row[0].strip(), " ".join(row[1].split())
    if not caption:
      problems.append(f"{captions_path}:{line}: empty caption for {image}.")
    elif image not in present:
      problems.append(f"{captions_path}:{line}: image {image} not found in {images_dir}.")
    else:
      captions.setdefault(image, []).append(caption)
  if problems:
    shown = "\n  ".join(problems[:50])
    more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
    raise DataError(f"{len(problems)} problem(s) in {captions_path}:\n  {shown}{more}")
  if not captions:
    raise DataError(f"{captions_path}: no captions.")
  return [Record(name, os.path.join(images_dir, name), tuple(caps))
          for name, caps in captions.items()]


def hash_split(records: list[Record], fractions: dict[str, float]) -> dict[str, list[Record]]:
  """Deterministic split by a hash of the filename: stable as images are added or removed."""
  total = sum(fractions.values())
  names = list(fractions)
  upper = list(np.cumsum([fractions[n] / total for n in names]))
  upper[-1] = np.inf  # Rounding never leaves an image out.
  splits: dict[str, list[Record]] = {name: [] for name in names}
  for r in sorted(records, key=lambda r: r.filename):
    u = int.from_bytes(hashlib.sha256(r.filename.encode()).digest()[:8], "big") / 2.0**64
    splits[names[int(np.searchsorted(upper, u, side="right"))]].append(r)
  return splits
