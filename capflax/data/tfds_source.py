"""A prepared TFDS captioning data set (`data.layout='tfds:coco_captions'`), as a folder.

The train stream addresses every example by index (exact resume, per-host slices), which
TFDS's sequential TFRecord shards cannot give. So the data set is exported once, its
encoded image bytes untouched, into a folder in Karpathy's layout: `dataset_<name>.json`
+ `images/`. From there the ordinary Karpathy reader, the image check, the split and the
pipeline apply unchanged, and a resumed run reuses the export. The json is written last,
so an interrupted export is simply redone.
"""

import dataclasses
import json
import os

from absl import logging

from capflax.data import sources

PREFIX = "tfds:"
IMAGES = "images"


@dataclasses.dataclass(frozen=True)
class Spec:
  builder: str  # TFDS name/config.
  splits: tuple[str, ...]  # TFDS splits, each also a Karpathy split name.
  download: str  # What `tfds build` fetches, for the error when it has not been run.


# Builders whose examples carry `image`, `image/filename`, `image/id` and `captions/text`.
SPECS = {
    # Karpathy's split; `restval` (the spare val2014 images) is trained on (sources.py).
    "coco_captions": Spec("coco_captions/2014", ("train", "restval", "val", "test"),
                          "~40 GB: COCO 2014's image zips and Karpathy's split"),
}


def is_tfds(layout: str) -> bool:
  return layout.startswith(PREFIX)


def _spec(layout: str) -> tuple[str, Spec]:
  name = layout[len(PREFIX):]
  if name not in SPECS:
    raise sources.DataError(f"config.data.layout={layout!r}: unknown TFDS data set; expected "
                            f"one of {', '.join(PREFIX + n for n in SPECS)}.")
  return name, SPECS[name]


def export(layout: str, tfds_data_dir: str, out_dir: str) -> str:
  """`out_dir` in Karpathy's layout holding the prepared TFDS data set (exported once)."""
  import tensorflow_datasets as tfds  # Only TFDS layouts pay for the import.
  name, spec = _spec(layout)
  builder = tfds.builder(spec.builder, data_dir=tfds_data_dir or None)
  if not builder.is_prepared():
    raise sources.DataError(
        f"{builder.data_dir}: {spec.builder} is not prepared; run `tfds build {spec.builder} "
        f"--data_dir={builder.data_dir_root}` (downloads {spec.download}) "
        "or set config.data.tfds_data_dir to the data_dir of a prepared copy.")
  json_path = os.path.join(out_dir, f"dataset_{name}.json")
  source = f"{spec.builder} {builder.version} in {builder.data_dir}"
  if os.path.exists(json_path):
    with open(json_path, encoding="utf-8") as f:
      if json.load(f).get("source") == source:
        return out_dir
  images_dir = os.path.join(out_dir, IMAGES)
  os.makedirs(images_dir, exist_ok=True)
  logging.info("Exporting %s to %s (once).", source, out_dir)
  entries, seen = [], set()
  for split in spec.splits:
    exported = []
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            decoders={"image": tfds.decode.SkipDecoding()})
    for ex in tfds.as_numpy(ds):
      filename = ex["image/filename"].decode("utf-8")
      if filename in seen or os.path.basename(filename) != filename:
        raise sources.DataError(f"{builder.data_dir}: split {split!r}: image/filename "
                                f"{filename!r} is repeated or not a plain file name.")
      seen.add(filename)
      tmp = os.path.join(images_dir, f".{filename}.{os.getpid()}.tmp")
      with open(tmp, "wb") as f:
        f.write(ex["image"])  # The encoded bytes as stored, not re-encoded.
      os.replace(tmp, os.path.join(images_dir, filename))
      exported.append({
          "filename": filename, "filepath": IMAGES, "split": split,
          "cocoid": int(ex["image/id"]),
          "sentences": [{"raw": t.decode("utf-8")} for t in ex["captions"]["text"]]})
    # By filename, so the records' order (and the train stream) ignores TFDS's shard order.
    entries += sorted(exported, key=lambda e: e["filename"])
    logging.info("Exported %s: %d images.", split, len(exported))
  tmp = f"{json_path}.{os.getpid()}.tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump({"source": source, "images": entries}, f)
  os.replace(tmp, json_path)
  return out_dir
