"""SigLIP and SigLIP 2 image towers (Zhai et al., 2023; Tschannen et al., 2025).

The image tower of big_vision's two-tower model is big_vision's ViT without a class
token, pooled by a MAP head into the contrastive embedding. A captioner wants the patch
tokens instead: the encoder's output after `Transformer/encoder_norm`, which is our ViT,
unchanged. The fixed-resolution SigLIP 2 towers have the same architecture and names
(big_vision's README_siglip2: only the text side changed); NaFlex towers are not
supported. Inputs are in [-1, 1].

Readable files: the big_vision two-tower `.npz` releases (the `img/` subtree, with or
without a `params/` prefix, per-block or scan-stacked, bfloat16 or float32; the MAP head,
the text tower, temperature `t` and bias `b` are ignored), and Hugging Face
`SiglipModel` / `SiglipVisionModel` `.safetensors` (the `vision_model.` arrays).
"""

import jax.numpy as jnp

from capflax.models import pretrained, vit
from capflax.models.encoder_spec import EncoderSpec


def build(enc, model) -> vit.ViT:
  return vit.ViT(**vit.sizes(enc), dropout=enc.dropout,
                 dtype=jnp.dtype(model.dtype), remat=model.remat, scan=model.scan)


def read(path: str, target) -> dict:
  raw = pretrained.read_arrays(path)
  if path.endswith(".safetensors"):
    ckpt = pretrained.hf_vision_names(raw)
    if not ckpt:
      raise pretrained.CheckpointError(f"{path} has no 'vision_model.' arrays: not a Hugging "
                                       "Face SigLIP checkpoint.")
  else:
    ckpt = pretrained.subtree(pretrained.subtree(raw, "params/") or raw, "img/")
    if not ckpt:
      raise pretrained.CheckpointError(f"{path} has no 'img/' arrays: not a big_vision "
                                       "two-tower (SigLIP) checkpoint.")
  return pretrained.fit(ckpt, target, path, "siglip", optional=("MAPHead", "head/"))


SPEC = EncoderSpec(
    build=build, read=read, scan=True, fields=vit.SIZE_FIELDS + ("dropout",),
    formats="big_vision SigLIP / SigLIP 2 two-tower .npz, Hugging Face SigLIP .safetensors")
