"""ResNet v1.5 and BiT ResNetV2 encoders: published sizes, names, token output."""

import flax
import jax
import jax.numpy as jnp
import pytest

from capflax.models import captioner, resnet
from configs import demo


def _shapes(module, image_size=224):
  return jax.eval_shape(module.init, jax.random.PRNGKey(0),
                        jnp.zeros((1, image_size, image_size, 3)))


def _count(module):
  return sum(x.size for x in jax.tree.leaves(_shapes(module)["params"]))


# torchvision's published counts (1000-class head; BatchNorm statistics are not parameters).
@pytest.mark.parametrize("depth,count", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032),
                                         (101, 44_549_160), (152, 60_192_808)])
def test_resnet_v15_parameter_counts_match_published(depth, count):
  assert _count(resnet.ResNet(depth, num_classes=1000)) == count


def test_bit_r50x1_parameter_count_matches_published():
  """timm's `resnetv2_50x1_bit` (BiT-R50x1, 1000 classes) has 25,549,352 parameters."""
  assert _count(resnet.BiT(50, 1, num_classes=1000)) == 25_549_352


def test_bit_width_multiplier_scales_the_channels():
  shapes = _shapes(resnet.BiT(50, 3))["params"]
  assert shapes["root_block"]["standardized_conv2d"]["kernel"].shape == (7, 7, 3, 192)
  assert shapes["group_norm"]["scale"].shape == (2048 * 3,)


def _names(tree):
  return sorted("/".join(k) for k in flax.traverse_util.flatten_dict(tree))


def test_bit_names_are_the_public_npz_names_without_their_prefix():
  params = _shapes(resnet.BiT(50, 1, num_classes=10), 64)["params"]
  unit = [n for n in _names(params) if n.startswith("block2/unit01/")]
  assert unit == [f"block2/unit01/{n}" for n in (
      "a/group_norm/bias", "a/group_norm/scale", "a/proj/standardized_conv2d/kernel",
      "a/standardized_conv2d/kernel", "b/group_norm/bias", "b/group_norm/scale",
      "b/standardized_conv2d/kernel", "c/group_norm/bias", "c/group_norm/scale",
      "c/standardized_conv2d/kernel")]
  assert [n for n in _names(params) if not n.startswith("block")] == [
      "group_norm/bias", "group_norm/scale", "head/conv2d/bias", "head/conv2d/kernel",
      "root_block/standardized_conv2d/kernel"]
  assert sorted({n.split("/")[1] for n in _names(params) if n.startswith("block3/")}) == [
      f"unit{i:02d}" for i in range(1, 7)]
  assert not any("proj" in n for n in _names(params) if "/unit02/" in n)


def test_resnet_names_and_batch_stats():
  variables = _shapes(resnet.ResNet(18), 64)
  first = [n for n in _names(variables["params"]) if n.startswith("BasicBlock_2/")]
  assert first == [f"BasicBlock_2/{n}" for n in (
      "BatchNorm_0/bias", "BatchNorm_0/scale", "BatchNorm_1/bias", "BatchNorm_1/scale",
      "Conv_0/kernel", "Conv_1/kernel", "conv_proj/kernel", "norm_proj/bias", "norm_proj/scale")]
  assert _names(variables["batch_stats"])[:2] == ["BasicBlock_0/BatchNorm_0/mean",
                                                  "BasicBlock_0/BatchNorm_0/var"]


@pytest.mark.parametrize("module,channels", [(resnet.ResNet(18), 512), (resnet.BiT(26, 1), 2048)])
def test_output_is_the_last_feature_map_as_tokens(module, channels):
  images = jnp.ones((2, 64, 96, 3))
  out = jax.eval_shape(lambda: module.init_with_output(jax.random.PRNGKey(0), images)[0])
  assert out.shape == (2, 2 * 3, channels)


@pytest.mark.parametrize("name,variant,top", [
    ("resnet", "18", "conv_init"), ("bit", "R26x1", "root_block"), ("vit", "Ti/16", "embedding")])
def test_build_picks_the_encoder_family(name, variant, top):
  config = demo.get_config("tiny")
  config.model.encoder.update(name=name, variant=variant)
  config.data.image_size = 32
  model = captioner.build(config, vocab_size=7)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3), jnp.uint8),
                          jnp.zeros((1, 5), jnp.int32))
  assert top in shapes["params"]["encoder"]


@pytest.mark.parametrize("family,variant", [("resnet", "51"), ("bit", "R18x1"), ("bit", "R50"),
                                            ("resnet", "R50x1")])
def test_unknown_variant_is_named(family, variant):
  with pytest.raises(ValueError, match=repr(variant)):
    resnet.parse_variant(family, variant)
