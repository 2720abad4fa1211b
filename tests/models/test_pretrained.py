"""Public checkpoint formats: synthetic .npz files in each naming scheme load exactly."""

import re
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from capflax import inference, train
from capflax.models import encoders, pretrained, resnet, vit
from configs import demo
from tests.conftest import REPO

TINY_VIT = dict(width=8, depth=2, mlp_dim=16, num_heads=2, patch_size=4)


def _init(module, image_size, seed=0):
  """Random parameters (not the module's own init, which zeroes some) as a flat numpy dict."""
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0),
                          jnp.zeros((1, image_size, image_size, 3)))["params"]
  rng = np.random.default_rng(seed)
  return {"/".join(k): rng.normal(size=v.shape).astype(np.float32)
          for k, v in flax.traverse_util.flatten_dict(shapes).items()}


def _tree(flat):
  return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})


def _apply(module, flat, images):
  return module.apply({"params": _tree(flat)}, images)


def _images(size, seed=1):
  return jax.random.uniform(jax.random.PRNGKey(seed), (2, size, size, 3), minval=-1, maxval=1)


def _vision_transformer_name(ours):
  """Our (big_vision) name -> the original vision_transformer release's, written out."""
  ours = {"pos_embedding": "Transformer/posembed_input/pos_embedding"}.get(ours, ours)
  for new, old in (("MultiHeadDotProductAttention_0", "MultiHeadDotProductAttention_1"),
                   ("LayerNorm_1", "LayerNorm_2"), ("MlpBlock_0", "MlpBlock_3")):
    ours = ours.replace(f"/{new}/", f"/{old}/")
  return ours


def test_vision_transformer_npz_loads_onto_our_names(tmp_path):
  """AugReg-style names, with class token, pre-logits and head our model does not have."""
  ckpt_model = vit.ViT(**TINY_VIT, class_token=True, num_classes=5)
  flat = _init(ckpt_model, 16)
  on_disk = {_vision_transformer_name(k): v for k, v in flat.items()}
  assert "Transformer/encoderblock_1/MlpBlock_3/Dense_0/kernel" in on_disk
  on_disk |= {"pre_logits/kernel": np.ones((8, 8), np.float32)}
  np.savez(tmp_path / "vit.npz", **on_disk)

  ours = vit.ViT(**TINY_VIT)  # No class token, no head.
  target = jax.eval_shape(ours.init, jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))["params"]
  loaded = encoders.read_checkpoint(str(tmp_path / "vit.npz"), "vit", target)
  expected = {k: v for k, v in flat.items() if not re.match(r"cls|head/", k)}
  expected["pos_embedding"] = flat["pos_embedding"][:, 1:]  # The class token's row goes.
  got = {"/".join(k): v for k, v in flax.traverse_util.flatten_dict(loaded).items()}
  assert sorted(got) == sorted(expected)
  for k, v in expected.items():
    np.testing.assert_array_equal(got[k], v, err_msg=k)
  images = _images(16)
  np.testing.assert_array_equal(ours.apply({"params": loaded}, images),
                                _apply(ours, expected, images))


def test_big_vision_npz_loads_and_every_array_reaches_the_output(tmp_path):
  model = vit.ViT(**TINY_VIT, class_token=True)
  flat = _init(model, 16)
  np.savez(tmp_path / "bv.npz", **flat)
  target = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))["params"]
  loaded = encoders.read_checkpoint(str(tmp_path / "bv.npz"), "vit", target)
  images = _images(16)
  out = model.apply({"params": loaded}, images)
  np.testing.assert_array_equal(out, _apply(model, flat, images))
  for name in ("Transformer/encoderblock_1/MultiHeadDotProductAttention_0/value/kernel", "cls",
               "embedding/kernel"):
    changed = dict(flat, **{name: flat[name] * np.linspace(0.5, 1.5, flat[name].shape[-1])})
    np.savez(tmp_path / "changed.npz", **changed)
    other = encoders.read_checkpoint(str(tmp_path / "changed.npz"), "vit", target)
    assert not np.allclose(model.apply({"params": other}, images), out), name


def _big_transfer_name(ours):
  """Our BiT name -> the public .npz name, written out."""
  ours = re.sub(r"/scale$", "/gamma", re.sub(r"/bias$", "/beta", ours))
  return "resnet/" + ours.replace("head/conv2d/beta", "head/conv2d/bias")


def test_bit_npz_loads_onto_our_names(tmp_path):
  ckpt_model = resnet.BiT(26, 1, num_classes=3)
  flat = _init(ckpt_model, 32)
  on_disk = {_big_transfer_name(k): v for k, v in flat.items()}
  assert "resnet/block1/unit01/a/standardized_conv2d/kernel" in on_disk
  assert "resnet/block1/unit01/a/group_norm/gamma" in on_disk
  np.savez(tmp_path / "bit.npz", **on_disk)

  ours = resnet.BiT(26, 1)  # No head.
  target = jax.eval_shape(ours.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))["params"]
  loaded = encoders.read_checkpoint(str(tmp_path / "bit.npz"), "bit", target)
  expected = {k: v for k, v in flat.items() if not k.startswith("head/")}
  got = {"/".join(k): v for k, v in flax.traverse_util.flatten_dict(loaded).items()}
  assert sorted(got) == sorted(expected)
  images = _images(32)
  out = ours.apply({"params": loaded}, images)
  np.testing.assert_array_equal(out, _apply(ours, expected, images))
  name = "block4/unit02/b/standardized_conv2d/kernel"
  on_disk[f"resnet/{name}"] = on_disk[f"resnet/{name}"][::-1]
  np.savez(tmp_path / "changed.npz", **on_disk)
  other = encoders.read_checkpoint(str(tmp_path / "changed.npz"), "bit", target)
  assert not np.allclose(ours.apply({"params": other}, images), out)


def test_missing_unexpected_and_misshapen_names_fail_together(tmp_path):
  model = vit.ViT(**TINY_VIT)
  flat = _init(model, 16)
  del flat["Transformer/encoder_norm/scale"]
  flat["Transformer/encoderblock_0/LayerNorm_0/bias"] = np.zeros(3, np.float32)
  flat["MAPHead_0/probe"] = np.zeros((1, 1, 8), np.float32)
  np.savez(tmp_path / "bad.npz", **flat)
  target = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))["params"]
  with pytest.raises(ValueError) as e:
    encoders.read_checkpoint(str(tmp_path / "bad.npz"), "vit", target)
  message = str(e.value)
  assert "3 problems" in message
  assert "missing Transformer/encoder_norm/scale (8,)" in message
  assert "unexpected MAPHead_0/probe (1, 1, 8)" in message
  assert ("shape of Transformer/encoderblock_0/LayerNorm_0/bias: checkpoint (3,), model (8,)"
          in message)


def test_loading_never_unpickles(tmp_path):
  np.savez(tmp_path / "pickled.npz", cls=np.array([{"a": 1}], dtype=object))
  with pytest.raises(ValueError, match="pickled.npz"):
    encoders.read_checkpoint(str(tmp_path / "pickled.npz"), "vit", {"cls": np.zeros((1, 1, 8))})


def test_resampling_keeps_a_linear_ramp_linear_and_the_class_row():
  old, new, d = 3, 7, 2
  i, j = np.meshgrid(np.arange(old), np.arange(old), indexing="ij")
  ramp = np.stack([2.0 * i - j, 0.5 * j + 1.0], -1).reshape(1, old * old, d)  # [1, 9, 2]
  cls = np.full((1, 1, d), 9.0)
  out = pretrained.resample_posemb(np.concatenate([cls, ramp], 1), (1, 1 + new * new, d),
                                   model_cls=True)
  # The same ramp on the new grid, which spans the old one corner to corner.
  s = (old - 1) / (new - 1)
  i, j = np.meshgrid(np.arange(new) * s, np.arange(new) * s, indexing="ij")
  want = np.stack([2.0 * i - j, 0.5 * j + 1.0], -1).reshape(1, new * new, d)
  np.testing.assert_array_equal(out[:, :1], cls)
  np.testing.assert_allclose(out[:, 1:], want, atol=1e-12)
  dropped = pretrained.resample_posemb(np.concatenate([cls, ramp], 1), (1, new * new, d),
                                       model_cls=False)
  np.testing.assert_allclose(dropped, want, atol=1e-12)


def test_resnet_v15_has_no_public_format(tmp_path):
  with pytest.raises(ValueError, match="'resnet'"):
    encoders.read_checkpoint(str(tmp_path / "x.npz"), "resnet", {})


def test_training_starts_from_the_checkpoint_and_a_frozen_encoder_keeps_it(tmp_path):
  config = demo.get_config("tiny")
  config.train.update(num_steps=2, checkpoint_every=2)
  config.eval.splits = ()  # Training only.
  enc = config.model.encoder
  model = vit.ViT(enc.width, enc.depth, enc.mlp_dim, enc.num_heads, enc.patch_size,
                  class_token=True, num_classes=4)
  flat = {_vision_transformer_name(k): v for k, v in _init(model, 16, seed=5).items()}
  np.savez(tmp_path / "vit.npz", **flat)
  enc.update(init_from=str(tmp_path / "vit.npz"), frozen=True)
  train.train_and_evaluate(config, str(tmp_path / "run"))
  restored = inference.load(str(tmp_path / "run")).variables["params"]["encoder"]
  names = {"/".join(k): v for k, v in flax.traverse_util.flatten_dict(restored).items()}
  assert len(names) == len(flat) - 3  # All but cls and the head's kernel and bias.
  for k, v in names.items():
    want = flat[_vision_transformer_name(k)]
    np.testing.assert_array_equal(v, want[:, 1:] if k == "pos_embedding" else want, err_msg=k)


def test_a_checkpoint_loads_into_a_scanned_vit(tmp_path):
  flat = _init(vit.ViT(**TINY_VIT), 16)
  np.savez(tmp_path / "vit.npz", **{_vision_transformer_name(k): v for k, v in flat.items()})
  scan = vit.ViT(**TINY_VIT, scan=True)
  target = jax.eval_shape(scan.init, jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))["params"]
  loaded = encoders.read_checkpoint(str(tmp_path / "vit.npz"), "vit", target)
  stacked = loaded["Transformer"]["encoderblock"]["MlpBlock_0"]["Dense_1"]["bias"]  # [2, 8]
  np.testing.assert_array_equal(stacked[1],
                                flat["Transformer/encoderblock_1/MlpBlock_0/Dense_1/bias"])
  images = _images(16)
  np.testing.assert_allclose(scan.apply({"params": loaded}, images),
                             _apply(vit.ViT(**TINY_VIT), flat, images), atol=1e-5)


def test_command_line_names_an_unreadable_checkpoint_in_one_line(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "capflax.main", "--config=configs/demo.py:tiny",
       f"--workdir={tmp_path / 'run'}", f"--config.model.encoder.init_from={tmp_path}/none.npz"],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert out.returncode == 1 and "Traceback" not in out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith(
      f"capflax: model.encoder.init_from: cannot read '{tmp_path}/none.npz' as .npz")


def test_position_embedding_is_resampled_to_the_model_grid(tmp_path):
  ckpt = _init(vit.ViT(**TINY_VIT, class_token=True), 8)  # A 2x2 grid and the class row.
  np.savez(tmp_path / "vit.npz", **{_vision_transformer_name(k): v for k, v in ckpt.items()})
  model = vit.ViT(**TINY_VIT)  # A 4x4 grid at 16 px, no class token.
  target = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))["params"]
  got = encoders.read_checkpoint(str(tmp_path / "vit.npz"), "vit", target)["pos_embedding"]
  old, new = ckpt["pos_embedding"][0, 1:].reshape(2, 2, 8), got.reshape(4, 4, 8)
  for (i, j), (k, m) in {(0, 0): (0, 0), (0, 1): (0, 3), (1, 0): (3, 0), (1, 1): (3, 3)}.items():
    np.testing.assert_allclose(new[k, m], old[i, j], rtol=1e-6)  # Corners stay corners.
  np.testing.assert_allclose(new[0, 1], (2 * old[0, 0] + old[0, 1]) / 3, rtol=1e-5)
