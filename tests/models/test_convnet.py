"""The 'cnn' encoder: a small BatchNorm ResNet whose last feature map, with positions, is the
image's tokens."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from capflax import config_check
from capflax.models import captioner, convnet, vit
from configs import demo


def _init(module, side=32):
  return module.init(jax.random.PRNGKey(0), jnp.zeros((2, side, side, 3)))


def test_parameter_count_follows_the_layers():
  """3x3 kernels without bias, BatchNorm scale and bias; each unit two such layers."""
  widths, blocks = (8, 16, 24), 2
  expected, c_in = 0, 3
  for c in widths:
    expected += 9 * c_in * c + 2 * c + blocks * 2 * (9 * c * c + 2 * c)
    c_in = c
  params = _init(convnet.ConvNet(widths, blocks))["params"]
  assert sum(x.size for x in jax.tree.leaves(params)) == expected


def test_head_units_add_units_to_the_last_stage_only():
  """(8, 16) with blocks=0 and head_units=2 has the parameters of two 16-channel units more."""
  base = _init(convnet.ConvNet((8, 16), 0))["params"]
  head = _init(convnet.ConvNet((8, 16), 0, head_units=2))["params"]
  assert set(head) - set(base) == {"stage_1_unit_0", "stage_1_unit_1"}
  extra = sum(x.size for x in jax.tree.leaves(head)) - sum(x.size for x in jax.tree.leaves(base))
  assert extra == 2 * 2 * (9 * 16 * 16 + 2 * 16)


def test_tokens_are_the_last_feature_map_and_units_start_as_the_identity():
  images = jax.random.uniform(jax.random.PRNGKey(1), (2, 32, 32, 3))
  deep, shallow = convnet.ConvNet((8, 16), 1), convnet.ConvNet((8, 16), 0)
  variables = _init(deep)
  kept = {k: {n: v for n, v in tree.items() if "unit" not in n} for k, tree in variables.items()}
  tokens = deep.apply(variables, images)  # [2, 64, 16]: 32 px halved twice -> 8 x 8
  assert tokens.shape == (2, 64, 16)
  np.testing.assert_allclose(tokens, shallow.apply(kept, images), atol=1e-6)


def test_sincos_positions_are_added_and_learned_ones_are_a_parameter():
  images = jnp.zeros((1, 32, 32, 3))
  fixed = convnet.ConvNet((8, 16), 0, posemb="sincos2d")
  variables = _init(fixed)
  assert "pos_embedding" not in variables["params"]
  # A black image through BatchNorm at its initial statistics and ReLU: features are zero,
  # so the tokens are the positions themselves.
  np.testing.assert_allclose(fixed.apply(variables, images)[0], vit.posemb_sincos_2d(8, 8, 16),
                             atol=1e-6)
  learned = _init(convnet.ConvNet((8, 16), 0, posemb="learned"))
  assert learned["params"]["pos_embedding"].shape == (1, 64, 16)


def test_training_updates_the_batchnorm_statistics():
  module = convnet.ConvNet((8,), 1)
  variables = _init(module)
  images = jax.random.uniform(jax.random.PRNGKey(2), (4, 32, 32, 3))
  _, updated = module.apply(variables, images, train=True, mutable=["batch_stats"])
  before, after = variables["batch_stats"]["down_0_norm"], updated["batch_stats"]["down_0_norm"]
  assert not np.allclose(before["mean"], after["mean"])


def test_the_captioner_reads_it_from_the_registry():
  config = demo.get_config()
  config.model.encoder.update(name="cnn", widths=(8, 16), blocks=0)
  config.data.image_size = 32
  model = captioner.build(config, vocab_size=11)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 32, 32, 3), jnp.uint8),
                         jnp.zeros((2, 5), jnp.int32))
  assert "batch_stats" in variables
  memory = model.apply(variables, jnp.zeros((2, 32, 32, 3), jnp.uint8), method=model.encode)
  assert memory.shape == (2, 64, config.model.decoder.width)


@pytest.mark.parametrize("field,value,message", [
    ("widths", (), "model.encoder.widths must be a non-empty tuple"),
    ("blocks", -1, "model.encoder.blocks must be >= 0"),
    ("head_units", -2, "model.encoder.head_units must be >= 0"),
    ("posemb", "rope", "model.encoder.posemb must be one of"),
])
def test_bad_fields_are_one_config_error(field, value, message):
  config = demo.get_config()
  config.model.encoder.update(name="cnn", **{field: value})
  with pytest.raises(config_check.ConfigError, match=message):
    config_check.check(config)
