"""Reads a captioning folder in any of the layouts researchers download, into records.

Layouts, detected from the folder's contents:
  'karpathy': `dataset_*.json` (Karpathy's split file for Flickr8k, Flickr30k or COCO)
              next to the image folder; it carries its own train/val/test split.
  'original': the University of Illinois Flickr8k release, `Flicker8k_Dataset/` +
              `Flickr8k_text/Flickr8k.token.txt` (`name.jpg#i<TAB>caption`).
  'kaggle':   `Images/` + `captions.txt` (CSV, header `image,caption`); also what the
              built-in synthetic data is written as.
Readers never stop at the first bad row: every problem is collected with its file and
line, and the rows that caused them are left out, so the caller can list them all at
once ('error') or go on without them ('skip'). Only a missing folder or file is fatal.
Text files are UTF-8, with or without Excel's byte-order mark, or UTF-16 with its mark.
What is odd but usable (a repeated row, a caption far longer than the others) is a
warning and kept as it is (Flickr8k itself repeats 14 captions; training cuts a long
caption at max_len), so the data's standard counts hold.
"""

import collections
import csv
import dataclasses
import glob
import hashlib
import itertools
import json
import os

import numpy as np
from absl import logging

from capflax.data.tokenizer import words

KAGGLE_CAPTIONS, KAGGLE_IMAGES = "captions.txt", "Images"
ORIGINAL_IMAGES, ORIGINAL_TEXT = "Flicker8k_Dataset", "Flickr8k_text"  # sic: 'Flicker'.
ORIGINAL_TOKENS = "Flickr8k.token.txt"
ORIGINAL_SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
                        "test": "Flickr_8k.testImages.txt"}
KARPATHY_GLOB = "dataset_*.json"
NOT_KARPATHY = ("dataset_info.json",)  # TFDS's metadata, found in copied TFDS folders.
# Where Karpathy-json images live when entries carry no `filepath`: Kaggle and original
# Flickr8k, Flickr30k's download, anything else.
KARPATHY_IMAGE_DIRS = (KAGGLE_IMAGES, ORIGINAL_IMAGES, "flickr30k-images", "images")
# Karpathy's 'restval' (COCO's spare val2014 images) is trained on, as in his code.
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}
# The release's token file has one group for `2258277193_586949ec62.jpg.1`, a name with
# no image (the Kaggle copy drops it); it is left out with a log line, not a problem.
KNOWN_BOGUS = frozenset({"2258277193_586949ec62.jpg.1"})
LAYOUTS = ("karpathy", "original", "kaggle")
# A caption is an outlier when longer than both this many words and LONG_FACTOR x the median.
LONG_WORDS, LONG_FACTOR = 50, 5
MAX_QUOTED_LINES = 5  # A quoted CSV caption may span this many lines; more: an unclosed quote.


class DataError(ValueError):
  """Bad input data; the message lists every problem found."""


@dataclasses.dataclass(frozen=True)
class Record:
  filename: str  # e.g. '1000268201_693b08cb0e.jpg': the image id used in results.
  path: str
  captions: tuple[str, ...]


@dataclasses.dataclass
class Read:
  """What a folder holds: its records, the problems found, and any split it carries."""
  layout: str
  data_dir: str
  records: list[Record]
  problems: list[str]
  splits: dict[str, set[str]] | None = None  # split -> filenames, when the layout has one.
  warnings: list[str] = dataclasses.field(default_factory=list)  # Usable, but worth a look.


def clean_caption(text: str) -> str:
  """Collapses stray whitespace and drops the detached full stop ('a dog .' -> 'a dog')."""
  text = " ".join(text.split())
  return text[:-2] if text.endswith(" .") else text


def _lines(path: str, problems: list[str]):
  """(line number, text) of a text file, without line endings (LF or CRLF).

  A line that is not UTF-8 becomes a problem naming its line and byte, and is skipped.
  A UTF-8 byte-order mark (Excel's "CSV UTF-8") is dropped; UTF-16 with its mark is read.
  """
  with open(path, "rb") as f:
    raw = f.read()
  if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
    try:
      raw = raw.decode("utf-16").encode("utf-8")
    except UnicodeDecodeError as e:
      raise DataError(f"{path}: starts like UTF-16 text but does not decode as it (byte "
                      f"{e.start}); save it as UTF-8.") from None
  elif b"\x00" in raw[:4096]:
    raise DataError(f"{path}: holds NUL bytes, so it is not UTF-8 text (UTF-16 without a "
                    f"byte-order mark?); save it as UTF-8.")
  raw = raw.removeprefix(b"\xef\xbb\xbf")
  for number, line in enumerate(raw.split(b"\n"), start=1):
    line = line.rstrip(b"\r")
    try:
      yield number, line.decode("utf-8")
    except UnicodeDecodeError as e:
      problems.append(f"{path}:{number}: not UTF-8 (byte 0x{line[e.start]:02x} at column "
                      f"{e.start + 1}).")


def _csv_rows(path: str, problems: list[str]):
  """(first line number, fields) per CSV row; a quoted field may span up to
  MAX_QUOTED_LINES lines (a caption with a line break), an unclosed quote is a problem."""
  source = _lines(path, problems)
  pending = collections.deque()  # Lines read ahead to close a quote, not yet used.
  while True:
    if not pending:
      pending.extend(itertools.islice(source, 1))
      if not pending:
        return
    number, text = pending[0]
    used = 1
    while text.count('"') % 2 and used < MAX_QUOTED_LINES:
      if used == len(pending):
        pending.extend(itertools.islice(source, 1))
        if used == len(pending):
          break
      text += "\n" + pending[used][1]
      used += 1
    if text.count('"') % 2:
      problems.append(f"{path}:{number}: a double quote opened on this line is never closed; "
                      f"close it or remove it.")
      used = 1
    elif text.strip():  # Blank lines (e.g. a trailing newline) carry nothing.
      yield number, text, next(csv.reader([text]))
    for _ in range(used):
      pending.popleft()


def _require(path: str, kind: str, expected: str) -> None:
  if not (os.path.isdir(path) if kind == "folder" else os.path.isfile(path)):
    raise DataError(f"{path}: missing {kind}; {expected}")


def _records(captions: dict[str, list[str]], images_dir: str) -> list[Record]:
  return [Record(name, os.path.join(images_dir, name), tuple(caps))
          for name, caps in captions.items()]


def _add(captions, problems, where, image, caption, present, images_dir) -> None:
  """Files one caption under its image, or a problem saying why not."""
  caption = clean_caption(caption)
  if not words(caption):
    problems.append(f"{where}: empty caption for {image}.")
  elif image not in present:
    problems.append(f"{where}: image {image} not found in {images_dir}.")
  else:
    captions.setdefault(image, []).append(caption)


def read_kaggle_layout(data_dir: str) -> Read:
  """`Images/` + `captions.txt`: a real CSV, captions with commas double-quoted."""
  captions_path = os.path.join(data_dir, KAGGLE_CAPTIONS)
  images_dir = os.path.join(data_dir, KAGGLE_IMAGES)
  expected = f"a Kaggle-layout folder holds {KAGGLE_IMAGES}/ and {KAGGLE_CAPTIONS}."
  _require(captions_path, "file", expected)
  _require(images_dir, "folder", expected)
  present = set(os.listdir(images_dir))
  captions: dict[str, list[str]] = {}
  problems: list[str] = []
  header = None
  for line, text, row in _csv_rows(captions_path, problems):
    if header is None:
      header = row
      if [c.strip().lower() for c in row] != ["image", "caption"]:
        raise DataError(f"{captions_path}:{line}: expected the header 'image,caption', "
                        f"got {text!r}.")
      continue
    if len(row) != 2:
      problems.append(f"{captions_path}:{line}: expected 2 fields 'image,caption', "
                      f"got {len(row)}.")
      continue
    _add(captions, problems, f"{captions_path}:{line}", row[0].strip(), row[1], present,
         images_dir)
  if header is None:
    raise DataError(f"{captions_path}:1: expected the header 'image,caption', got an empty file.")
  return _finish(Read("kaggle", data_dir, _records(captions, images_dir), problems),
                 captions_path, images_dir)


def read_split_list(path: str, problems: list[str]) -> set[str]:
  """One image filename per line (the official `Flickr_8k.*Images.txt` files)."""
  return {text.strip() for _, text in _lines(path, problems) if text.strip()}


def read_original_layout(data_dir: str) -> Read:
  """`Flicker8k_Dataset/` + `Flickr8k_text/` with the token file and the split lists."""
  images_dir = os.path.join(data_dir, ORIGINAL_IMAGES)
  text_dir = os.path.join(data_dir, ORIGINAL_TEXT)
  tokens_path = os.path.join(text_dir, ORIGINAL_TOKENS)
  expected = (f"the original Flickr8k release holds {ORIGINAL_IMAGES}/ and "
              f"{ORIGINAL_TEXT}/{ORIGINAL_TOKENS}.")
  _require(images_dir, "folder", expected)
  _require(tokens_path, "file", expected)
  present = set(os.listdir(images_dir))
  captions: dict[str, list[str]] = {}
  problems: list[str] = []
  bogus = 0
  for line, text in _lines(tokens_path, problems):
    if not text.strip():
      continue
    key, tab, caption = text.partition("\t")
    image, hash_, index = key.strip().rpartition("#")
    if not tab or not hash_ or not index.isdigit():
      problems.append(f"{tokens_path}:{line}: expected 'name.jpg#i<TAB>caption', got {text!r}.")
      continue
    if image in KNOWN_BOGUS:
      bogus += 1
      continue
    _add(captions, problems, f"{tokens_path}:{line}", image, caption, present, images_dir)
  if bogus:
    logging.info("%s: left out the %d captions of %s, a known defect of the release that "
                 "names no image.", tokens_path, bogus, ", ".join(sorted(KNOWN_BOGUS)))
  splits = None
  split_paths = {s: os.path.join(text_dir, f) for s, f in ORIGINAL_SPLIT_FILES.items()}
  if all(os.path.isfile(p) for p in split_paths.values()):
    splits = {s: read_split_list(p, problems) for s, p in split_paths.items()}
  return _finish(Read("original", data_dir, _records(captions, images_dir), problems, splits),
                 tokens_path, images_dir)


def _karpathy_json(data_dir: str) -> str | None:
  """The first `dataset_*.json` but TFDS's `dataset_info.json`, which is no split file."""
  found = [p for p in sorted(glob.glob(os.path.join(data_dir, KARPATHY_GLOB)))
           if os.path.basename(p) not in NOT_KARPATHY]
  return found[0] if found else None


def read_karpathy_layout(data_dir: str) -> Read:
  """Karpathy's `dataset_*.json`: images[].filename (+ filepath), split, sentences[].raw."""
  path = _karpathy_json(data_dir)
  if path is None:
    raise DataError(f"{os.path.join(data_dir, KARPATHY_GLOB)}: missing file; a Karpathy-layout "
                    "folder holds e.g. dataset_flickr8k.json next to its image folder.")
  try:
    with open(path, encoding="utf-8") as f:
      entries = json.load(f)["images"]
  except UnicodeDecodeError as e:
    raise DataError(f"{path}: not UTF-8 (byte {e.start}).") from None
  except (json.JSONDecodeError, KeyError, TypeError) as e:
    raise DataError(f"{path}: not a Karpathy split file with an 'images' list ({e}).") from None
  images_dir = next((os.path.join(data_dir, d) for d in KARPATHY_IMAGE_DIRS
                     if os.path.isdir(os.path.join(data_dir, d))), None)
  records, problems = [], []
  splits: dict[str, set[str]] = {s: set() for s in ("train", "val", "test")}
  listing: dict[str, set[str]] = {}
  for i, entry in enumerate(entries):
    where = f"{path}: images[{i}]"
    try:
      name, split = entry["filename"], entry["split"]
      raw = [s["raw"] for s in entry["sentences"]]
    except (KeyError, TypeError) as e:
      problems.append(f"{where}: expected 'filename', 'split' and 'sentences[].raw' ({e!r}).")
      continue
    if split not in KARPATHY_SPLITS:
      problems.append(f"{where}: unknown split {split!r} (expected one of "
                      f"{sorted(KARPATHY_SPLITS)}).")
      continue
    folder = os.path.join(data_dir, entry["filepath"]) if "filepath" in entry else images_dir
    if folder is None:
      raise DataError(f"{data_dir}: no image folder next to {os.path.basename(path)}; expected "
                      f"one of {', '.join(d + '/' for d in KARPATHY_IMAGE_DIRS)}.")
    if folder not in listing:
      listing[folder] = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    captions: dict[str, list[str]] = {}
    for j, caption in enumerate(raw):
      _add(captions, problems, f"{where}.sentences[{j}]", name, caption, listing[folder],
           folder)
    if name in captions:
      records.append(Record(name, os.path.join(folder, name), tuple(captions[name])))
      splits[KARPATHY_SPLITS[split]].add(name)
  return _finish(Read("karpathy", data_dir, records, problems, splits), path, images_dir)


def _finish(read: Read, captions_path: str, images_dir: str | None) -> Read:
  """Whole-file checks once every row is read: no captions at all, images a folder too
  deep; warnings for repeated rows and outlier-length captions."""
  if not read.records and not read.problems:
    raise DataError(f"{captions_path}: holds no captions (only a header?); every image needs "
                    f"at least one.")
  missing = sum("not found in" in p for p in read.problems)
  if images_dir and missing and not read.records:
    deeper = [d for d in sorted(os.listdir(images_dir))
              if os.path.isdir(os.path.join(images_dir, d))]
    if deeper:
      raise DataError(f"{images_dir}: none of the {missing} captioned images are here, but "
                      f"folder {os.path.join(images_dir, deeper[0])}/ is: the images are one "
                      f"folder too deep; move them up into {images_dir}.")
  records = read.records
  for r in records:
    repeats = len(r.captions) - len(set(r.captions))
    if repeats:
      read.warnings.append(f"{captions_path}: {r.filename} has {repeats} repeated caption(s) "
                           f"(kept; remove the repeated rows to weigh each caption once).")
  lengths = [len(words(c)) for r in records for c in r.captions]
  if lengths:
    median = float(np.median(lengths))
    limit = max(LONG_WORDS, LONG_FACTOR * median)
    read.warnings += [f"{captions_path}: {r.filename}: a caption of {len(words(c))} words "
                      f"(median {median:g}); training reads its first data.max_len words."
                      for r in records for c in r.captions if len(words(c)) > limit]
  return read


def detect(data_dir: str) -> str:
  """The layout of `data_dir`: Karpathy json first (it carries its split), then original."""
  if not os.path.isdir(data_dir):
    raise DataError(f"{data_dir}: no such folder (expected one of: {KAGGLE_IMAGES}/ + "
                    f"{KAGGLE_CAPTIONS}; {ORIGINAL_IMAGES}/ + {ORIGINAL_TEXT}/; "
                    f"{KARPATHY_GLOB} + an image folder).")
  if _karpathy_json(data_dir):
    return "karpathy"
  if os.path.isdir(os.path.join(data_dir, ORIGINAL_TEXT)):
    return "original"
  if os.path.exists(os.path.join(data_dir, KAGGLE_CAPTIONS)):
    return "kaggle"
  inside = next((d for d in sorted(os.listdir(data_dir))
                 if os.path.isdir(os.path.join(data_dir, d)) and _known(os.path.join(data_dir, d))),
                None)
  hint = f"; {os.path.join(data_dir, inside)} has one: pass that folder" if inside else ""
  raise DataError(f"{data_dir}: no known layout; expected {KAGGLE_IMAGES}/ + {KAGGLE_CAPTIONS} "
                  f"(Kaggle), {ORIGINAL_IMAGES}/ + {ORIGINAL_TEXT}/ (original release) or "
                  f"{KARPATHY_GLOB} next to an image folder (Karpathy){hint}.")


def _known(folder: str) -> bool:
  return bool(_karpathy_json(folder)) or any(os.path.exists(os.path.join(folder, f)) for f in (
      ORIGINAL_TEXT, KAGGLE_CAPTIONS))


def read(data_dir: str, layout: str = "") -> Read:
  """Reads `data_dir` in `layout` ('' detects it)."""
  layout = layout or detect(data_dir)
  readers = {"kaggle": read_kaggle_layout, "original": read_original_layout,
             "karpathy": read_karpathy_layout}
  if layout not in readers:
    raise DataError(f"unknown layout {layout!r}; expected '' (detect) or one of {LAYOUTS}.")
  if not os.path.isdir(data_dir):
    raise DataError(f"{data_dir}: no such folder (expected the {layout} layout).")
  return readers[layout](data_dir)


def raise_problems(problems: list[str], where: str, limit: int = 50) -> None:
  """One DataError listing every problem (the first `limit` in full)."""
  if problems:
    shown = "\n  ".join(problems[:limit])
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    raise DataError(f"{len(problems)} problem(s) in {where}:\n  {shown}{more}")


def read_kaggle(data_dir: str) -> list[Record]:
  """All records of a Kaggle-layout folder in first-appearance order; any problem raises."""
  if not os.path.isdir(data_dir):
    raise DataError(
        f"{data_dir}: no such folder (expected {KAGGLE_IMAGES}/ and {KAGGLE_CAPTIONS}).")
  result = read_kaggle_layout(data_dir)
  raise_problems(result.problems, os.path.join(data_dir, KAGGLE_CAPTIONS))
  if not result.records:
    raise DataError(f"{os.path.join(data_dir, KAGGLE_CAPTIONS)}: no captions.")
  return result.records


def hash_split(records: list[Record], fractions: dict[str, float]) -> dict[str, list[Record]]:
  """Deterministic split by a hash of the filename: stable as images are added or removed.

  The hash intervals follow the split names in sorted order, so the split does not depend
  on how the fractions were written (ConfigDict sorts its keys; a dict keeps its own order).
  """
  total = sum(fractions.values())
  names = sorted(fractions)
  upper = list(np.cumsum([fractions[n] / total for n in names]))
  upper[-1] = np.inf  # Rounding never leaves an image out.
  splits: dict[str, list[Record]] = {name: [] for name in names}
  for r in sorted(records, key=lambda r: r.filename):
    u = int.from_bytes(hashlib.sha256(r.filename.encode()).digest()[:8], "big") / 2.0**64
    splits[names[int(np.searchsorted(upper, u, side="right"))]].append(r)
  return splits
