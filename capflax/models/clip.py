"""OpenAI CLIP image towers (Radford et al., 2021), from their `.safetensors` releases.

CLIP's ViT differs from big_vision's in four ways, all fields of our ViT: the patch
embedding has no bias; a LayerNorm (`pre_norm`, CLIP's `ln_pre`) follows the embedding;
the MLP uses QuickGELU, x * sigmoid(1.702 x); LayerNorm epsilon is 1e-5. The class token
is kept (the weights were trained with it) but only the patch tokens go to the decoder,
after the final LayerNorm (`ln_post`, which CLIP itself applies to the class token only).
Inputs are normalised with CLIP's own mean and std.

Readable files: Hugging Face `CLIPModel` / `CLIPVisionModel` `.safetensors` (e.g.
openai/clip-vit-base-patch16's model.safetensors): only `vision_model.` arrays are used,
the text tower and projections are ignored. Pickled torch files are never read.
"""

import jax.numpy as jnp

from capflax.models import pretrained, vit
from capflax.models.encoder_spec import EncoderSpec

# Per-channel (RGB) mean and std of pixels in [0, 1], from OpenAI's CLIP preprocessing.
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def build(enc, model) -> vit.ViT:
  return vit.ViT(**vit.sizes(enc), class_token=True, dropout=enc.dropout,
                 dtype=jnp.dtype(model.dtype), remat=model.remat, scan=model.scan,
                 activation="quick_gelu", norm_epsilon=1e-5, patch_bias=False, pre_norm=True)


def read(path: str, target) -> dict:
  if not path.endswith(".safetensors"):
    raise pretrained.CheckpointError(f"model.encoder.init_from: {path!r}: CLIP weights are read "
                                     "from .safetensors files only.")
  ckpt = pretrained.hf_vision_names(pretrained.read_arrays(path))
  if not ckpt:
    raise pretrained.CheckpointError(f"{path} has no 'vision_model.' arrays: not a Hugging Face "
                                     "CLIP checkpoint.")
  return pretrained.fit(ckpt, target, path, "clip")


SPEC = EncoderSpec(build=build, read=read, scan=True, fields=vit.SIZE_FIELDS + ("dropout",),
                   mean=MEAN, std=STD, formats="Hugging Face CLIP .safetensors")
