import jax
import jax.numpy as jnp
import numpy as np
import pytest

from capflax.models import vit


def _count(module, image_size):
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0),
                          jnp.zeros((1, image_size, image_size, 3)))
  return sum(x.size for x in jax.tree.leaves(shapes["params"])), shapes["params"]


def test_vit_b16_parameter_count_matches_published():
  """ViT-B/16 with class token and a 1000-class head has 86,567,656 parameters."""
  count, _ = _count(vit.ViT(**vit.parse_variant("B/16"), class_token=True, num_classes=1000), 224)
  assert count == 86_567_656


def test_parameter_names_follow_big_vision():
  _, params = _count(vit.ViT(width=8, depth=1, mlp_dim=16, num_heads=2, patch_size=4,
                             class_token=True, num_classes=3), 8)
  names = sorted("/".join(k.key for k in path) for path, _ in
                 jax.tree_util.tree_flatten_with_path(params)[0])
  block = "Transformer/encoderblock_0"
  assert names == sorted([
      "cls", "embedding/bias", "embedding/kernel", "head/bias", "head/kernel", "pos_embedding",
      "Transformer/encoder_norm/bias", "Transformer/encoder_norm/scale",
      f"{block}/LayerNorm_0/bias", f"{block}/LayerNorm_0/scale",
      f"{block}/LayerNorm_1/bias", f"{block}/LayerNorm_1/scale",
      f"{block}/MlpBlock_0/Dense_0/bias", f"{block}/MlpBlock_0/Dense_0/kernel",
      f"{block}/MlpBlock_0/Dense_1/bias", f"{block}/MlpBlock_0/Dense_1/kernel",
      *(f"{block}/MultiHeadDotProductAttention_0/{p}/{w}"
        for p in ("query", "key", "value", "out") for w in ("bias", "kernel"))])
  attention = params["Transformer"]["encoderblock_0"]["MultiHeadDotProductAttention_0"]
  assert attention["query"]["kernel"].shape == (8, 2, 4)
  assert attention["out"]["kernel"].shape == (2, 4, 8)


def test_output_is_one_token_per_patch():
  model = vit.ViT(width=8, depth=1, mlp_dim=16, num_heads=2, patch_size=4, class_token=True)
  images = jnp.ones((2, 12, 16, 3))
  out, _ = model.init_with_output(jax.random.PRNGKey(0), images)
  assert out.shape == (2, 3 * 4, 8)


def test_unknown_variant_is_named():
  with pytest.raises(ValueError, match="'X/16'"):
    vit.parse_variant("X/16")


def test_scan_stacks_the_blocks_and_computes_the_same_function():
  kw = dict(width=8, depth=3, mlp_dim=16, num_heads=2, patch_size=4)
  images = jax.random.normal(jax.random.PRNGKey(1), (2, 16, 16, 3))
  loop, scan = vit.ViT(**kw), vit.ViT(**kw, scan=True, remat=True)
  params = loop.init(jax.random.PRNGKey(0), images)["params"]
  scan_shapes = jax.eval_shape(scan.init, jax.random.PRNGKey(0), images)["params"]
  blocks = [params["Transformer"].pop(f"encoderblock_{i}") for i in range(3)]
  stacked = dict(params, Transformer=dict(params["Transformer"], encoderblock=jax.tree.map(
      lambda *b: jnp.stack(b), *blocks)))  # [3, ...] per parameter, block order kept.
  assert jax.tree.map(jnp.shape, stacked) == jax.tree.map(lambda s: s.shape, scan_shapes)
  params["Transformer"].update({f"encoderblock_{i}": b for i, b in enumerate(blocks)})
  np.testing.assert_allclose(scan.apply({"params": stacked}, images),
                             loop.apply({"params": params}, images), atol=1e-5)


def test_conv_stem_sees_full_resolution_and_gives_the_same_tokens():
  count, params = _count(vit.ViT(width=16, depth=1, mlp_dim=32, num_heads=2, patch_size=8,
                                 stem="conv"), 32)
  stem = params["stem"]
  assert [stem[f"conv_{i}"]["kernel"].shape for i in range(3)] == [
      (3, 3, 3, 4), (3, 3, 4, 8), (3, 3, 8, 16)]  # Stride 2 each: 32 -> 16 -> 8 -> 4.
  assert params["embedding"]["kernel"].shape == (1, 1, 16, 16)
  _, patch_params = _count(vit.ViT(width=16, depth=1, mlp_dim=32, num_heads=2, patch_size=8), 32)
  stem_count = sum(9 * i * o + o for i, o in ((3, 4), (4, 8), (8, 16))) + 16 * 16 + 16
  patch_count = sum(x.size for x in jax.tree.leaves(patch_params))
  assert count == patch_count - (8 * 8 * 3 * 16 + 16) + stem_count
  model = vit.ViT(width=16, depth=1, mlp_dim=32, num_heads=2, patch_size=8, stem="conv")
  images = jnp.zeros((2, 32, 32, 3))
  out = model.apply(model.init(jax.random.PRNGKey(0), images), images)
  assert out.shape == (2, 16, 16)  # [b, (32 / 8) ** 2, width]


def test_sincos_position_embedding_is_fixed_and_two_dimensional():
  pos = vit.posemb_sincos_2d(3, 4, 8)  # [12, 8]: two frequencies, 1 and 1/10000.
  row, col = 2, 3
  expected = [np.sin(col), np.sin(col / 1e4), np.cos(col), np.cos(col / 1e4),
              np.sin(row), np.sin(row / 1e4), np.cos(row), np.cos(row / 1e4)]
  np.testing.assert_allclose(pos[row * 4 + col], expected, rtol=1e-6)
  _, params = _count(vit.ViT(width=8, depth=1, mlp_dim=16, num_heads=2, patch_size=4,
                             posemb="sincos2d"), 8)
  assert "pos_embedding" not in params
  with pytest.raises(ValueError, match="posemb must be one of"):
    _count(vit.ViT(width=8, depth=1, mlp_dim=16, num_heads=2, patch_size=4, posemb="rope"), 8)
  with pytest.raises(ValueError, match="stem must be one of"):
    _count(vit.ViT(width=8, depth=1, mlp_dim=16, num_heads=2, patch_size=4, stem="big"), 8)
