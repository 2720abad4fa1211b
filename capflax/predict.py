"""Caption image files with a trained workdir.

    python -m capflax.predict --workdir=DIR photo.jpg more_photos/ [--beam_size=4]

Prints `path<TAB>caption` per image (`--num_return` lines each), or one JSON document
with `--json`. Folders are read one level deep. A file that is not a readable image, or
has more pixels than `--max_pixels` (a decompression bomb), gets a one-line error on
stderr and the others are still captioned; the exit status is 1 if any failed.
"""

import json
import os
import sys

import jax
import numpy as np
from absl import app, flags
from capflax import attention_maps, cli, evaluation, inference, sharding

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A capflax workdir (config.json, vocab.json, checkpoints/).")
flags.DEFINE_bool("json", False, "Print one JSON list of {path, captions} instead of lines.")
flags.DEFINE_integer("num_return", 1, "Captions per image (beam search or sampling).",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 16, "Images per decoding call.", lower_bound=1)
flags.DEFINE_integer("max_pixels", 89_478_485, "Larger images are refused (PIL's bomb limit).",
                     lower_bound=1)
flags.DEFINE_string("attention_dir", None, "Write one PNG per image: each word's "
                    "cross-attention over the photo.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
inference.define_decode_flags(flags)
flags.adopt_module_key_flags(inference)  # --help lists the decode flags too.
flags.mark_flags_as_required(["workdir"])

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def image_paths(args: list[str]) -> tuple[list[str], list[str]]:
  """(files as given and folders expanded to their image files, sorted; one-line errors
  for folders holding none)."""
  out, errors = [], []
  for arg in args:
    if os.path.isdir(arg):
      found = [os.path.join(arg, f) for f in sorted(os.listdir(arg))
               if f.lower().endswith(EXTENSIONS)]
      if not found:
        errors.append(f"{arg}: no image files in this folder (read one level deep; "
                      f"extensions {', '.join(EXTENSIONS)}).")
      out.extend(found)
    else:
      out.append(arg)
  return out, errors


def caption_files(workdir: str, paths: list[str], decode_overrides: dict, num_return: int = 1,
                  batch_size: int = 16, max_pixels: int = 89_478_485,
                  attention_dir: str | None = None, seed: int = 0):
  """([{'path', 'captions'}] in input order, [one-line errors])."""
  run = inference.load(workdir, decode_overrides)
  config, vocab = run.config, run.vocab
  s = config.data.image_size
  generate = evaluation.make_generate(config, len(vocab), run.mesh, num_return=num_return)
  attend = attention_maps.make_attend(config, len(vocab))
  batch_size = -(-batch_size // run.mesh.size) * run.mesh.size
  map_names = attention_maps.file_names(paths)
  results, errors, loaded = [], [], []
  for path in paths:
    try:
      loaded.append((path, *inference.read_image(path, s, max_pixels)))
    except inference.IMAGE_ERRORS as e:  # Unreadable, truncated, too many pixels.
      reason = str(e).splitlines()[0] if str(e) else type(e).__name__
      errors.append(f"{path}: cannot caption: {reason}")
  for start in range(0, len(loaded), batch_size):
    chunk = loaded[start:start + batch_size]
    images = np.zeros((batch_size, s, s, 3), np.uint8)  # Padded: one compiled shape.
    images[:len(chunk)] = [c[1] for c in chunk]
    global_images = sharding.global_batch({"image": images}, run.mesh)["image"]
    tokens = np.asarray(generate(run.variables, global_images,
                                 jax.random.fold_in(jax.random.PRNGKey(seed), start)))  # [B, R, T]
    if attention_dir:
      os.makedirs(attention_dir, exist_ok=True)
      weights = np.asarray(attend(run.variables, global_images, tokens[:, 0]))  # [B, T, n]
    for row, (path, _, photo) in enumerate(chunk):
      results.append({"path": path, "captions": [vocab.decode(t) for t in tokens[row]]})
      if attention_dir:
        words = attention_maps.panel_words(tokens[row, 0], vocab)  # <= T, rows of weights
        attention_maps.render(photo, words, weights[row, :len(words)]).save(
            os.path.join(attention_dir, map_names[path]))
  return results, errors


def main(argv):
  if len(argv) < 2:
    raise app.UsageError("give one or more image files or folders after the flags.")
  paths, errors = image_paths(argv[1:])
  if not paths:
    raise app.UsageError(errors[0] if len(errors) == 1 else "no image files to caption.")
  results, caption_errors = caption_files(
      FLAGS.workdir, paths, inference.decode_overrides(FLAGS), FLAGS.num_return,
      FLAGS.batch_size, FLAGS.max_pixels, FLAGS.attention_dir, FLAGS.seed)
  errors += caption_errors
  for error in errors:
    print(error, file=sys.stderr)
  if FLAGS.json:
    print(json.dumps(results, indent=2))
  else:
    for r in results:
      for caption in r["captions"]:
        print(f"{r['path']}\t{caption}")
  sys.exit(1 if errors else 0)


if __name__ == "__main__":
  cli.run(main, "capflax.predict")
