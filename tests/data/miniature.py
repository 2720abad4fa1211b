"""Miniature Flickr8k folders in each layout: generated JPEGs + the real caption text."""

import csv
import json
import pathlib

from PIL import Image

from capflax.data import sources


def real_captions(text_dir: pathlib.Path) -> dict[str, list[str]]:
  """name -> captions, straight from the real Kaggle CSV (an independent parse)."""
  with open(text_dir / "captions.txt", newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f))[1:]
  out: dict[str, list[str]] = {}
  for name, caption in rows:
    out.setdefault(name, []).append(caption)
  return out


def official(text_dir: pathlib.Path) -> dict[str, list[str]]:
  return {s: (text_dir / f).read_text().split() for s, f in sources.ORIGINAL_SPLIT_FILES.items()}


def pick(text_dir: pathlib.Path, per_split: int = 2, unlisted: int = 1) -> dict[str, str | None]:
  """A few images of each official split, and `unlisted` that are in no list: name -> split."""
  lists = official(text_dir)
  chosen: dict[str, str | None] = {n: s for s, names in lists.items() for n in names[:per_split]}
  listed = {n for names in lists.values() for n in names}
  spare = [n for n in real_captions(text_dir) if n not in listed]
  chosen.update({n: None for n in spare[:unlisted]})
  return chosen


def write_jpegs(folder: pathlib.Path, names, size=(50, 38)) -> None:
  folder.mkdir(parents=True, exist_ok=True)
  for k, name in enumerate(names):
    Image.new("RGB", size, (20 * k % 256, 100, 200)).save(folder / name, quality=90)


def kaggle(root: pathlib.Path, text_dir: pathlib.Path, names) -> pathlib.Path:
  caps = real_captions(text_dir)
  write_jpegs(root / "Images", names)
  with open(root / "captions.txt", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["image", "caption"])
    w.writerows((n, c) for n in names for c in caps[n])
  return root


def original(root: pathlib.Path, text_dir: pathlib.Path, names, crlf=False) -> pathlib.Path:
  """Token lines for `names` copied verbatim from the real file, with the bogus group."""
  write_jpegs(root / sources.ORIGINAL_IMAGES, names)
  text = root / sources.ORIGINAL_TEXT
  text.mkdir()
  wanted = set(names) | sources.KNOWN_BOGUS
  lines = [line for line in (text_dir / sources.ORIGINAL_TOKENS).read_text().splitlines()
           if line.split("#")[0] in wanted]
  end = "\r\n" if crlf else "\n"
  (text / sources.ORIGINAL_TOKENS).write_bytes((end.join(lines) + end).encode())
  for f in sources.ORIGINAL_SPLIT_FILES.values():
    (text / f).write_bytes((text_dir / f).read_bytes())
  return root


def karpathy(root: pathlib.Path, text_dir: pathlib.Path, chosen: dict, name="flickr8k",
             image_dir="Images", filepath=None) -> pathlib.Path:
  caps = real_captions(text_dir)
  write_jpegs(root / (filepath or image_dir), chosen)
  images = []
  for n, split in chosen.items():
    if split is None:
      continue  # Karpathy's Flickr files hold only the listed images.
    entry = {"filename": n, "split": split,
             "sentences": [{"raw": c, "tokens": c.lower().split()} for c in caps[n]]}
    if filepath:
      entry["filepath"] = filepath
    images.append(entry)
  (root / f"dataset_{name}.json").write_text(json.dumps({"images": images, "dataset": name}))
  return root
