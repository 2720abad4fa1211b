"""Public encoder checkpoints (`.npz`) mapped onto our parameter names.

`--config.model.encoder.init_from=PATH` reads, without unpickling:
- ViT from google-research/vision_transformer (AugReg and the original release: names
  such as `Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel`,
  `LayerNorm_2`, `MlpBlock_3`, `Transformer/posembed_input/pos_embedding`) or from
  big_vision (our names already);
- BiT ResNetV2 from google-research/big_transfer (`resnet/block1/unit01/a/
  standardized_conv2d/kernel`, `.../group_norm/gamma`, `resnet/head/conv2d/kernel`).

The position embedding is resampled to our patch grid; the class token and the
classification head are dropped when our model has none. Anything else that does not
match, name or shape, fails in one error that lists every problem.
"""

import re

import flax
import jax
import ml_collections
import numpy as np


class CheckpointError(ValueError):
  """A checkpoint file that cannot be read or does not fit the model."""


# Original vision_transformer names -> big_vision's (ours).
_VIT_RENAMES = (
    (r"^Transformer/posembed_input/pos_embedding$", "pos_embedding"),
    (r"/MultiHeadDotProductAttention_1/", "/MultiHeadDotProductAttention_0/"),
    (r"/LayerNorm_2/", "/LayerNorm_1/"),
    (r"/MlpBlock_3/", "/MlpBlock_0/"),
)
# Parts a checkpoint may carry that a captioning encoder may lack.
_OPTIONAL = {"vit": ("cls", "head/", "pre_logits/"), "bit": ("head/",)}


def load_encoder(config: ml_collections.ConfigDict, params: dict) -> dict:
  """`params` with params['encoder'] replaced by `config.model.encoder.init_from`'s arrays."""
  enc = config.model.encoder
  target = params["encoder"]
  arrays = read_npz(enc.init_from, enc.name, target)
  loaded = jax.tree.map(lambda a, t: jax.device_put(a.astype(t.dtype), t.sharding), arrays, target)
  return {**params, "encoder": loaded}


def read_npz(path: str, family: str, target) -> dict:
  """The checkpoint at `path` as a nested dict shaped like `target` (arrays or shapes)."""
  if family not in _OPTIONAL:
    raise CheckpointError(f"model.encoder.init_from: no public checkpoint format for encoder "
                     f"{family!r} (available: {', '.join(map(repr, _OPTIONAL))}).")
  try:
    with np.load(path, allow_pickle=False) as f:
      raw = {k: f[k] for k in f.files}
  except (OSError, ValueError) as e:
    raise CheckpointError(f"model.encoder.init_from: cannot read {path!r} as .npz: {e}") from e
  ckpt = _vit_names(raw) if family == "vit" else _bit_names(raw)
  want = {"/".join(k): v for k, v in flax.traverse_util.flatten_dict(target).items()}
  if any(k.startswith("Transformer/encoderblock/") for k in want):  # model.scan=True
    ckpt = _stack_blocks(ckpt)
  ckpt = {k: v for k, v in ckpt.items()
          if k in want or not any(k.startswith(p) for p in _OPTIONAL[family])}
  if family == "vit" and "pos_embedding" in ckpt and "pos_embedding" in want:
    ckpt["pos_embedding"] = resample_posemb(ckpt["pos_embedding"], want["pos_embedding"].shape,
                                            "cls" in raw, "cls" in want)
  problems = [f"missing {k} {tuple(want[k].shape)}" for k in sorted(set(want) - set(ckpt))]
  problems += [f"unexpected {k} {ckpt[k].shape}" for k in sorted(set(ckpt) - set(want))]
  for k in sorted(set(want) & set(ckpt)):
    if ckpt[k].size != np.prod(want[k].shape, dtype=int):
      problems.append(f"shape of {k}: checkpoint {ckpt[k].shape}, model {tuple(want[k].shape)}")
    else:  # Some files store GroupNorm parameters as [1, 1, 1, c].
      ckpt[k] = ckpt[k].reshape(want[k].shape)
  if problems:
    raise CheckpointError(f"{path} does not match the {family} encoder ({len(problems)} problems): "
                     + "; ".join(problems))
  return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in ckpt.items()})


def _vit_names(raw: dict) -> dict:
  out = {}
  for name, value in raw.items():
    for pattern, new in _VIT_RENAMES:
      name = re.sub(pattern, new, name)
    out[name] = value
  return out


def _stack_blocks(ckpt: dict) -> dict:
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


def _bit_names(raw: dict) -> dict:
  out = {}
  for name, value in raw.items():
    name = name.removeprefix("resnet/")
    name = re.sub(r"/standardized_conv2d_\d+/", "/standardized_conv2d/", name)
    out[re.sub(r"/gamma$", "/scale", re.sub(r"/beta$", "/bias", name))] = value
  return out


def resample_posemb(posemb: np.ndarray, shape: tuple, ckpt_cls: bool,
                    model_cls: bool) -> np.ndarray:
  """[1, (1+) g*g, d] -> `shape` [1, (1+) n*n, d]: the grid part resampled bilinearly.

  Corners map to corners (as scipy.ndimage.zoom, which vision_transformer uses), so a
  linear ramp stays exactly linear. The class token's row (present when the checkpoint
  has a class token) is kept when the model has one too, dropped otherwise.
  """
  cls, grid = (posemb[:, :1], posemb[:, 1:]) if ckpt_cls else (posemb[:, :0], posemb)
  old, new = int(np.sqrt(grid.shape[1])), int(np.sqrt(shape[1] - model_cls))
  if old * old != grid.shape[1] or new * new != shape[1] - model_cls or model_cls > ckpt_cls:
    return posemb  # Not two square grids: reported as a shape mismatch.
  grid = grid.reshape(old, old, -1)  # [g, g, d]
  if new != old:
    grid = _interp(_interp(grid, new, axis=0), new, axis=1)  # [n, n, d]
  grid = grid.reshape(1, new * new, -1)  # [1, n*n, d]
  return np.concatenate([cls, grid], axis=1) if model_cls else grid


def _interp(x: np.ndarray, size: int, axis: int) -> np.ndarray:
  """Linear interpolation of `x` along `axis` to `size` samples, end points kept."""
  pos = np.linspace(0, x.shape[axis] - 1, size)  # [size]
  lo = np.floor(pos).astype(int)
  hi = np.minimum(lo + 1, x.shape[axis] - 1)
  frac = (pos - lo).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
  return np.take(x, lo, axis) * (1 - frac) + np.take(x, hi, axis) * frac
