"""Cross-attention maps: where the decoder looked in the image for each word it wrote.

The weights come from the decoder's `CrossAttention` modules, sown into the
`intermediates` collection; a teacher-forced pass over the generated caption gives the
same attention as the cached decode did, word by word.
"""

import os
import re

import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from PIL import Image, ImageDraw

from capflax.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, Vocabulary

PANEL = 160  # Pixels per side of each word's panel.


def cross_attention(model, variables, images, tokens):
  """Head-mean attention of the last decoder layer: images [b, s, s, 3], generated tokens
  [b, T] -> [b, T, n] (row t: the attention while predicting tokens[:, t])."""
  inputs = jnp.concatenate([jnp.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], 1)  # [b, T]
  _, state = model.apply(variables, images, inputs, mutable=["intermediates"])
  flat = traverse_util.flatten_dict(state["intermediates"])
  layers = sorted((k for k in flat if "CrossAttention" in k), key=_natural)
  if not layers:
    raise ValueError("the decoder sows no CrossAttention weights.")
  return flat[layers[-1]][0].mean(axis=1)  # [b, h, T, n] -> [b, T, n]


def _natural(path: tuple) -> tuple:
  """Sort key: numbers by value, so 'decoderblock_10' comes after 'decoderblock_9'."""
  return tuple(tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(part)))
               for part in path)


def written_words(vocab: Vocabulary, tokens) -> list[str]:
  """The tokens [T] the decoder wrote, as words: up to its EOS ('<eos>' kept, one panel
  like the words) or, for a caption that reached max_len without one, all T."""
  words = []
  for t in map(int, tokens):
    if t == PAD_ID:
      break
    words.append(vocab.itos[t])
    if t == EOS_ID:
      break
  return words

def file_names(paths: list[str]) -> dict[str, str]:
  """path -> PNG name: the file's own name, unless two inputs share it ('a/x.jpg', 'b/x.jpg'):
  then the path below their common folder, '/' as '__' ('a__x.png', 'b__x.png')."""
  stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
  absolute = [os.path.abspath(p) for p in paths]
  common = os.path.commonpath([os.path.dirname(a) for a in absolute]) if paths else ""
  names = {}
  for path, stem, full in zip(paths, stems, absolute):
    if stems.count(stem) > 1:
      stem = os.path.splitext(os.path.relpath(full, common))[0].replace(os.sep, "__")
    names[path] = stem + ".png"
  return names


def _heat(values: np.ndarray) -> np.ndarray:
  """[h, w] in [0, 1] -> [h, w, 3] uint8, dark blue -> red -> yellow."""
  v = np.clip(values, 0.0, 1.0)[..., None]
  colours = np.array([[0, 0, 128], [220, 30, 30], [255, 240, 60]], np.float32)  # [3, 3]
  low = colours[0] + (colours[1] - colours[0]) * np.minimum(v * 2, 1)
  return np.where(v < 0.5, low, colours[1] + (colours[2] - colours[1]) * (v * 2 - 1)).astype(
      np.uint8)


def render(photo: Image.Image, words: list[str], attention: np.ndarray) -> Image.Image:
  """One panel per word: the photo with that word's attention [n] as a heat map over it.

  The n image tokens must form a square grid (ViT patches, ResNet feature maps).
  """
  grid = int(round(np.sqrt(attention.shape[-1])))
  if grid * grid != attention.shape[-1]:
    raise ValueError(f"{attention.shape[-1]} image tokens do not form a square grid.")
  base = photo.convert("RGB").resize((PANEL, PANEL), Image.BILINEAR)
  columns = min(len(words), 5) or 1
  rows = -(-len(words) // columns)
  sheet = Image.new("RGB", (columns * PANEL, rows * (PANEL + 18)), "white")
  draw = ImageDraw.Draw(sheet)
  for i, word in enumerate(words):
    weights = attention[i].reshape(grid, grid)
    weights = weights / max(float(weights.max()), 1e-9)
    small = Image.fromarray((weights * 255).astype(np.uint8), "L")
    upsampled = np.asarray(small.resize((PANEL, PANEL), Image.BILINEAR), np.float32) / 255
    overlay = Image.blend(base, Image.fromarray(_heat(upsampled)), 0.5)
    x, y = (i % columns) * PANEL, (i // columns) * (PANEL + 18)
    sheet.paste(overlay, (x, y))
    draw.text((x + 4, y + PANEL + 3), word, fill="black")
  return sheet
