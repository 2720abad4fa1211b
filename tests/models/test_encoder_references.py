"""Each encoder family against its own reference implementation.

The fixtures in tests/models/fixtures/encoders were made once by
scripts/make_encoder_fixtures.py (versions in versions.json): tiny random-weight models
of big_vision (SigLIP, SigLIP 2), Hugging Face transformers (SiglipModel, CLIPModel),
vision_transformer (ViT AugReg) and big_transfer's bit_pytorch (BiT), each with its
weights file in the public format, an input batch and the reference's output tokens.
Here the files go through capflax's registry, reader and model only.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from capflax.models import captioner, clip, encoders
from configs import demo
from tests.models import bit_weights

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "encoders")
TINY = dict(variant="", width=32, depth=2, mlp_dim=64, num_heads=2, patch_size=4)


def _io(name):
  with np.load(os.path.join(FIXTURES, f"{name}_io.npz")) as f:
    return dict(f)


def _encoder(name, scan=False, **fields):
  config = demo.get_config("tiny")
  config.model.encoder.update(name=name, **fields)
  config.model.scan = scan
  return config, encoders.build_encoder(config)


def _run(config, module, path, pixels):
  """Tokens of `module` with the weights at `path` read through the registry."""
  target = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.asarray(pixels[:1]))["params"]
  params = encoders.read_checkpoint(path, config.model.encoder.name, target)
  return np.asarray(module.apply({"params": params}, jnp.asarray(pixels)))


def _check_normalisation(config, io):
  spec = encoders.spec(config)
  ours = encoders.normalize(jnp.asarray(io["images"]), spec.mean, spec.std, jnp.float32)
  np.testing.assert_allclose(ours, io["pixels"], atol=1e-6)


CASES = {  # fixture -> (weights file, encoder name, config fields, model.scan)
    "siglip": ("siglip.npz", "siglip", TINY, False),
    "siglip_scanned": ("siglip.npz", "siglip", TINY, True),  # Per-block file, scanned model.
    "siglip2": ("siglip2.npz", "siglip", TINY, False),  # Scan-stacked bf16 file, per-block.
    "siglip_hf": ("siglip_hf.safetensors", "siglip", TINY, False),
    "clip": ("clip.safetensors", "clip", TINY, False),
    "vit_augreg": ("vit_augreg.npz", "vit", dict(TINY, class_token=True), False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_tokens_match_the_reference_implementation(case):
  weights, name, fields, scan = CASES[case]
  io = _io(case.removesuffix("_scanned"))
  config, module = _encoder(name, scan, **fields)
  _check_normalisation(config, io)
  tokens = _run(config, module, os.path.join(FIXTURES, weights), io["pixels"])
  assert tokens.shape == io["tokens"].shape
  np.testing.assert_allclose(tokens, io["tokens"], atol=1e-5, rtol=1e-5)


def test_siglip2_at_another_resolution_matches_big_vision_resampling():
  """A 4x4-grid checkpoint at 24 px: big_vision's own `resample_posemb` was the reference."""
  io = _io("siglip2")
  config, module = _encoder("siglip", **TINY)
  tokens = _run(config, module, os.path.join(FIXTURES, "siglip2.npz"), io["big_pixels"])
  assert tokens.shape == (2, 36, 32)
  # The resampled grid's float32 rounding depends on the CPU's kernels: 2.7e-5 at most on an
  # AMD EPYC against the machine that made the fixture.
  np.testing.assert_allclose(tokens, io["big_tokens"], atol=1e-4, rtol=1e-4)


def _bit_npz(tmp_path):
  """The BiT fixture's .npz, rebuilt from its manifest exactly as the script built it."""
  with open(os.path.join(FIXTURES, "bit_manifest.json")) as f:
    manifest = json.load(f)
  arrays = bit_weights.arrays(manifest)
  assert bit_weights.sha256(arrays) == manifest["sha256"], "numpy's random stream changed"
  np.savez(tmp_path / "bit.npz", **arrays)
  return str(tmp_path / "bit.npz")


def test_bit_tokens_match_big_transfer(tmp_path):
  io = _io("bit")
  config, module = _encoder("bit", variant="R26x1")
  _check_normalisation(config, io)
  tokens = _run(config, module, _bit_npz(tmp_path), io["pixels"])
  np.testing.assert_allclose(tokens, io["tokens"], atol=1e-5, rtol=1e-5)



def test_the_captioner_feeds_each_encoder_its_own_normalisation():
  """CLIP's processor output reaches the CLIP tower through the captioner's uint8 input."""
  io = _io("clip")
  config, _ = _encoder("clip", **TINY)
  model = captioner.build(config, vocab_size=7)
  assert (model.pixel_mean, model.pixel_std) == (clip.MEAN, clip.STD)
  variables = model.init(jax.random.PRNGKey(0), io["images"][:1], jnp.zeros((1, 3), jnp.int32))
  params = encoders.read_checkpoint(os.path.join(FIXTURES, "clip.safetensors"), "clip",
                                    variables["params"]["encoder"])
  variables = {"params": {**variables["params"], "encoder": params}}
  tokens = model.apply(variables, io["images"], method=type(model).features)
  np.testing.assert_allclose(tokens, io["tokens"], atol=1e-5, rtol=1e-5)
