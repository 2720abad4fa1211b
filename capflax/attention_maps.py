"""Cross-attention maps: where the decoder looked in the image for each word it wrote.

The weights come from the decoder's `CrossAttention` modules, sown into the
`intermediates` collection; a teacher-forced pass over the generated caption gives the
same attention as the cached decode did, word by word.
"""

import functools
import io
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from capflax.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from capflax.models import captioner

COLORMAP = "inferno"  # Perceptually uniform; dark where the weight is low (and transparent).
MAX_OPACITY = 0.85  # Of the heat at the caption's largest weight: the photo always shows.
PANEL = 160  # Pixels per side of each word's panel.
LABEL = 20  # Pixels under each panel for the word and its peak weight.


def teacher_forced(model, variables, images, tokens):
  """(logits [b, T, vocab], head-mean attention of the last decoder layer [b, T, n]) of a
  pass over generated tokens [b, T]; row t is the step that chose tokens[:, t]."""
  inputs = jnp.concatenate([jnp.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], 1)  # [b, T]
  logits, state = model.apply(variables, images, inputs, mutable=["intermediates"])
  flat = traverse_util.flatten_dict(state["intermediates"])
  layers = sorted((k for k in flat if "CrossAttention" in k), key=_natural)
  if not layers:
    raise ValueError("the decoder sows no CrossAttention weights.")
  return logits, flat[layers[-1]][0].mean(axis=1)  # [b, h, T, n] -> [b, T, n]


def _natural(path: tuple) -> tuple:
  """Sort key: numbers by value, so 'decoderblock_10' comes after 'decoderblock_9'."""
  return tuple(tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(part)))
               for part in path)


def cross_attention(model, variables, images, tokens):
  """Head-mean attention of the last decoder layer: images [b, s, s, 3], generated tokens
  [b, T] -> [b, T, n] (row t: the attention while predicting tokens[:, t])."""
  return teacher_forced(model, variables, images, tokens)[1]


def make_attend(config, vocab_size: int):
  """jitted (variables, images [b, s, s, 3] uint8, tokens [b, T]) -> attention [b, T, n]."""
  return jax.jit(functools.partial(cross_attention, captioner.build(config, vocab_size)))


def panel_words(tokens: np.ndarray, vocab) -> list[str]:
  """The words a caption's map has panels for: tokens [T] up to and including EOS (shown as
  '<eos>'), or all of them when the search stopped at max_len without one."""
  words = []
  for t in np.asarray(tokens).tolist():
    if t == PAD_ID:
      break
    words.append(vocab.itos[t])
    if t == EOS_ID:
      break
  return words


def grid_size(num_tokens: int) -> int:
  """Side of the square grid of n image tokens (ViT patches, ResNet feature maps)."""
  grid = int(round(np.sqrt(num_tokens)))
  if grid * grid != num_tokens:
    raise ValueError(f"{num_tokens} image tokens do not form a square grid.")
  return grid


def overlays(attention: np.ndarray) -> np.ndarray:
  """One caption's attention [T, n] -> heat overlays [T, g, g, 4] uint8 RGBA.

  Every word shares one colour scale, 0 to the caption's largest weight, so a nearly flat
  map stays faint instead of tinting the whole photo; colour and opacity both follow the
  weight, so the photo shows through where the decoder did not look.
  """
  grid = grid_size(attention.shape[-1])
  scaled = attention.reshape(-1, grid, grid) / max(float(attention.max()), 1e-9)  # [T, g, g]
  rgba = colormaps[COLORMAP](scaled)  # [T, g, g, 4] floats in [0, 1]
  rgba[..., 3] = scaled * MAX_OPACITY
  return np.round(rgba * 255).astype(np.uint8)


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
  buffer = io.BytesIO()
  (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buffer, "PNG")
  return buffer.getvalue()


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


def render(photo: Image.Image, words: list[str], attention: np.ndarray) -> Image.Image:
  """One panel per word: the photo under that word's heat overlay (`overlays`), the word
  and its peak weight printed beneath. attention: [len(words), n]."""
  heat = overlays(attention)  # [T, g, g, 4]
  base = photo.convert("RGBA").resize((PANEL, PANEL), Image.BILINEAR)
  columns = min(len(words), 5) or 1
  rows = -(-len(words) // columns)
  sheet = Image.new("RGB", (columns * PANEL, rows * (PANEL + LABEL)), "white")
  draw = ImageDraw.Draw(sheet)
  font = ImageFont.load_default(size=13)
  for i, word in enumerate(words):
    layer = Image.fromarray(heat[i], "RGBA").resize((PANEL, PANEL), Image.BILINEAR)
    x, y = (i % columns) * PANEL, (i // columns) * (PANEL + LABEL)
    sheet.paste(Image.alpha_composite(base, layer).convert("RGB"), (x, y))
    draw.text((x + PANEL // 2, y + PANEL + LABEL // 2), f"{word}  {attention[i].max():.2f}",
              fill="black", font=font, anchor="mm")
  return sheet
