"""Decoder behaviour through the full captioner: causality and cached decoding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from capflax.models import captioner
from configs import demo


@pytest.fixture(scope="module")
def setup():
  config = demo.get_config()
  config.model.encoder.update(width=16, depth=1, mlp_dim=32, num_heads=2, patch_size=8)
  config.model.decoder.update(width=16, depth=2, mlp_dim=32, num_heads=2)
  config.data.update(image_size=16, max_len=6)
  model = captioner.build(config, vocab_size=11)
  images = jax.random.randint(jax.random.PRNGKey(1), (2, 16, 16, 3), 0, 256).astype(jnp.uint8)
  tokens = jax.random.randint(jax.random.PRNGKey(2), (2, 7), 0, 11)
  params = model.init(jax.random.PRNGKey(0), images, tokens)["params"]
  return config, model, params, images, tokens


def test_changing_a_later_token_never_changes_an_earlier_logit(setup):
  _, model, params, images, tokens = setup
  logits = model.apply({"params": params}, images, tokens)  # [2, 7, 11]
  for j in range(1, 7):
    changed = tokens.at[:, j].set((tokens[:, j] + 1) % 11)
    other = model.apply({"params": params}, images, changed)
    np.testing.assert_allclose(other[:, :j], logits[:, :j], atol=1e-6)
    assert not np.allclose(other[:, j:], logits[:, j:])


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_cached_step_by_step_decoding_reproduces_the_full_forward_pass(setup, positions):
  config, _, _, images, tokens = setup
  config = config.copy_and_resolve_references()
  config.model.decoder.positions = positions
  model = captioner.build(config, vocab_size=11)
  params = model.init(jax.random.PRNGKey(0), images, tokens)["params"]
  full = model.apply({"params": params}, images, tokens)  # [2, 7, 11]
  stepper = captioner.build(config, vocab_size=11, decode=True)
  Captioner = type(stepper)
  memory = stepper.apply({"params": params}, images, method=Captioner.encode)
  _, variables = stepper.apply({"params": params}, memory, jnp.zeros((2, 8), jnp.int32),
                               method=Captioner.decode, mutable=["cache"])
  cache = variables["cache"]
  for t in range(7):
    step_logits, variables = stepper.apply({"params": params, "cache": cache}, memory,
                                           tokens[:, t:t + 1], jnp.array([t]),
                                           method=Captioner.decode, mutable=["cache"])
    cache = variables["cache"]
    np.testing.assert_allclose(step_logits[:, 0], full[:, t], atol=1e-5)
