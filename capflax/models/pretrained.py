"""Reading public encoder checkpoints onto our parameter trees, whatever the family.

Each encoder module (`capflax.models.encoders.REGISTRY`) turns its public files' names
into ours; this module does the rest for all of them:
- reads `.npz` without unpickling (big_vision's bfloat16, stored by numpy as 2-byte
  void, is recovered) and `.safetensors` with the safetensors package's numpy API;
- stacks per-block `Transformer/encoderblock_{i}` arrays into the `[depth, ...]` arrays
  of a scanned model, or splits stacked ones for a per-block model;
- resamples the position embedding to the model's patch grid, with or without a class
  token row on either side;
- fails in one error that lists every missing, unexpected or misshapen array.
"""

import re
from typing import Iterable

import flax
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from safetensors.numpy import load_file


class CheckpointError(ValueError):
  """A checkpoint file that cannot be read or does not fit the model."""


def read_arrays(path: str) -> dict[str, np.ndarray]:
  """Every array in the `.npz` or `.safetensors` file at `path`, by its stored name."""
  try:
    if path.endswith(".safetensors"):
      return load_file(path)
    with np.load(path, allow_pickle=False) as f:
      return {k: _recover_bfloat16(f[k]) for k in f.files}
  except Exception as e:  # np.load and safetensors raise many types for a bad file.
    kind = ".safetensors" if path.endswith(".safetensors") else ".npz"
    raise CheckpointError(f"model.encoder.init_from: cannot read {path!r} as {kind}: "
                          f"{type(e).__name__}: {e}") from e


def _recover_bfloat16(a: np.ndarray) -> np.ndarray:
  """numpy writes bfloat16 arrays as 2-byte void; big_vision's released files have some."""
  if a.dtype.kind == "V" and a.dtype.itemsize == 2:
    return a.view(jnp.bfloat16).astype(np.float32)
  return a


def fit(ckpt: dict[str, np.ndarray], target, path: str, family: str,
        optional: Iterable[str] = ()) -> dict:
  """`ckpt` (our names, '/'-joined) as a nested dict shaped like `target`.

  optional: name prefixes the checkpoint may carry that the model may lack (a class
  token, a classification head): dropped where the model has no such array.
  """
  want = {"/".join(k): v for k, v in flax.traverse_util.flatten_dict(target).items()}
  if any(k.startswith("Transformer/encoderblock/") for k in want):  # model.scan=True
    ckpt = stack_blocks(ckpt)
  else:
    ckpt = unstack_blocks(ckpt)
  optional = tuple(optional)
  ckpt = {k: v for k, v in ckpt.items() if k in want or not k.startswith(optional)}
  if "pos_embedding" in ckpt and "pos_embedding" in want:
    ckpt["pos_embedding"] = resample_posemb(ckpt["pos_embedding"], want["pos_embedding"].shape,
                                            "cls" in want)
  problems = [f"missing {k} {tuple(want[k].shape)}" for k in sorted(set(want) - set(ckpt))]
  problems += [f"unexpected {k} {ckpt[k].shape}" for k in sorted(set(ckpt) - set(want))]
  for k in sorted(set(want) & set(ckpt)):
    if ckpt[k].size != np.prod(want[k].shape, dtype=int):
      problems.append(f"shape of {k}: checkpoint {ckpt[k].shape}, model {tuple(want[k].shape)}")
    else:  # Attention kernels [d, d] -> [d, heads, d/heads]; GroupNorm [1, 1, 1, c] -> [c].
      ckpt[k] = ckpt[k].reshape(want[k].shape)
  if problems:
    raise CheckpointError(f"{path} does not match the {family} encoder ({len(problems)} "
                          "problems): " + "; ".join(problems))
  return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in ckpt.items()})


def rename(raw: dict[str, np.ndarray], rules) -> dict[str, np.ndarray]:
  """Each name with every (regex, replacement) of `rules` applied in turn."""
  out = {}
  for name, value in raw.items():
    for pattern, new in rules:
      name = re.sub(pattern, new, name)
    out[name] = value
  return out


def subtree(raw: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
  """The arrays named `prefix...`, with the prefix removed."""
  return {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}


def stack_blocks(ckpt: dict) -> dict:
  """`Transformer/encoderblock_{i}/...` -> `Transformer/encoderblock/...` [depth, ...] (nn.scan)."""
  out, blocks = {}, {}
  for name, value in ckpt.items():
    m = re.match(r"Transformer/encoderblock_(\d+)/(.*)", name)
    if m:
      blocks.setdefault(m[2], {})[int(m[1])] = value
    else:
      out[name] = value
  for rest, by_index in blocks.items():
    out[f"Transformer/encoderblock/{rest}"] = np.stack([by_index[i] for i in sorted(by_index)])
  return out


def unstack_blocks(ckpt: dict) -> dict:
  """The inverse of `stack_blocks`: a scanned checkpoint for a per-block model."""
  out = {}
  for name, value in ckpt.items():
    rest = name.removeprefix("Transformer/encoderblock/")
    if rest == name:
      out[name] = value
    else:
      for i, block in enumerate(value):
        out[f"Transformer/encoderblock_{i}/{rest}"] = block
  return out


def resample_posemb(posemb: np.ndarray, shape: tuple, model_cls: bool) -> np.ndarray:
  """[1, (1+) g*g, d] -> `shape` [1, (1+) n*n, d]: the grid part resampled bilinearly.

  A checkpoint has a class token row when its length is a square plus one (the
  vision_transformer and CLIP layout); big_vision's newer models add no position to the
  class token, so a model with one gets a zero row there (the same function). The row
  is dropped for a model without a class token. Corners map to corners (as
  scipy.ndimage.zoom, which vision_transformer and big_vision use), so a linear ramp
  stays exactly linear.
  """
  length, d = posemb.shape[1], posemb.shape[-1]
  ckpt_cls = _square(length) is None and _square(length - 1) is not None
  cls, grid = (posemb[:, :1], posemb[:, 1:]) if ckpt_cls else (np.zeros((1, 1, d)), posemb)
  old, new = _square(grid.shape[1]), _square(shape[1] - model_cls)
  if old is None or new is None or len(shape) != 3 or shape[-1] != d:
    return posemb  # Not two square grids: reported as a shape mismatch.
  grid = grid.reshape(old, old, d)  # [g, g, d]
  if new != old:
    logging.info("Position embeddings resampled from a %dx%d to a %dx%d grid.", old, old, new,
                 new)
    grid = _interp(_interp(grid, new, axis=0), new, axis=1)  # [n, n, d]
  grid = grid.reshape(1, new * new, d).astype(posemb.dtype)  # [1, n*n, d]
  return np.concatenate([cls.astype(posemb.dtype), grid], axis=1) if model_cls else grid


def _square(n: int) -> int | None:
  r = int(np.sqrt(max(n, 0)) + 0.5)
  return r if r * r == n and n > 0 else None


def _interp(x: np.ndarray, size: int, axis: int) -> np.ndarray:
  """Linear interpolation of `x` along `axis` to `size` samples, end points kept."""
  pos = np.linspace(0, x.shape[axis] - 1, size)  # [size]
  lo = np.floor(pos).astype(int)
  hi = np.minimum(lo + 1, x.shape[axis] - 1)
  frac = (pos - lo).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
  return np.take(x, lo, axis) * (1 - frac) + np.take(x, hi, axis) * frac


def hf_vision_names(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """A Hugging Face CLIP / SigLIP vision tower (`vision_model.*`, torch layouts) in our
  names and layouts; everything outside the vision tower is left out.

  Linear weights [out, in] become kernels [in, out] (attention kernels are reshaped to
  [d, heads, d/heads] by `fit`); the patch convolution [d, 3, p, p] becomes [p, p, 3, d].
  """
  rules = (
      (r"^embeddings\.patch_embedding\.weight$", "embedding/kernel"),
      (r"^embeddings\.patch_embedding\.bias$", "embedding/bias"),
      (r"^embeddings\.position_embedding\.weight$", "pos_embedding"),
      (r"^embeddings\.class_embedding$", "cls"),
      (r"^pre_layrnorm\.", "pre_norm."),  # Sic: CLIP's name.
      (r"^post_layernorm\.", "Transformer/encoder_norm."),
      (r"^encoder\.layers\.(\d+)\.", r"Transformer/encoderblock_\1/"),
      (r"/layer_norm1\.", "/LayerNorm_0."),
      (r"/layer_norm2\.", "/LayerNorm_1."),
      (r"/self_attn\.q_proj\.", "/MultiHeadDotProductAttention_0/query."),
      (r"/self_attn\.k_proj\.", "/MultiHeadDotProductAttention_0/key."),
      (r"/self_attn\.v_proj\.", "/MultiHeadDotProductAttention_0/value."),
      (r"/self_attn\.out_proj\.", "/MultiHeadDotProductAttention_0/out."),
      (r"/mlp\.fc1\.", "/MlpBlock_0/Dense_0."),
      (r"/mlp\.fc2\.", "/MlpBlock_0/Dense_1."),
      (r"^head\.", "MAPHead."),  # SigLIP's attention-pooling head: not used for captions.
  )
  vision = {k: v for k, v in subtree(raw, "vision_model.").items()
            if k != "embeddings.position_ids"}  # Older files store the position indices.
  out = {}
  for name, value in rename(vision, rules).items():
    if name == "embedding/kernel":
      value = value.transpose(2, 3, 1, 0)  # [d, 3, p, p] -> [p, p, 3, d]
    elif name == "pos_embedding":
      value = value[None]  # [n, d] -> [1, n, d]
    elif name == "cls":
      value = value.reshape(1, 1, -1)
    elif name.endswith(".weight") and value.ndim == 2:  # A torch Linear: [out, in].
      value = value.T
    module, _, kind = name.rpartition(".")  # 'weight' / 'bias' of a torch module, if any.
    if module:
      norm = module.endswith(("LayerNorm_0", "LayerNorm_1", "pre_norm", "encoder_norm"))
      name = f"{module}/{dict(weight='scale' if norm else 'kernel').get(kind, kind)}"
    out[name] = value
  return out
