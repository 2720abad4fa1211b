"""The weights table: every entry builds, at its resolution, the parameter count it states,
and those counts are the reference implementations' and the published ones."""

import json
import os

import jax
import jax.numpy as jnp
import pytest

from capflax.models import encoders
from capflax.models.weights import WEIGHTS
from configs import clip_b16, siglip_b16, siglip_so400m, vit_b16, bit_r50

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "encoders")
with open(os.path.join(FIXTURES, "param_counts.json")) as f:
  REFERENCE = json.load(f)  # HF transformers (meta device) and big_vision, by the script.


def _count(name, variant, resolution):
  config = siglip_b16.get_config()
  config.model.encoder.update(name=name, variant=variant, class_token=name == "vit")
  config.model.scan = name != "bit"  # Traces one block: fast for 40-layer towers too.
  module = encoders.build_encoder(config)
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0),
                          jnp.zeros((1, resolution, resolution, 3)))["params"]
  return sum(x.size for x in jax.tree.leaves(shapes))


@pytest.mark.parametrize("key", sorted(WEIGHTS))
def test_each_checkpoint_builds_its_stated_parameter_count(key):
  w = WEIGHTS[key]
  assert w.encoder in encoders.REGISTRY
  assert _count(w.encoder, w.variant, w.resolution) == w.params


def test_counts_are_the_reference_implementations():
  for label, count in REFERENCE.items():  # e.g. "siglip So400m/14 384"
    encoder, variant, res = label.split()
    matches = [w for w in WEIGHTS.values()
               if (w.encoder, w.variant, w.resolution) == (encoder, variant, int(res))]
    assert matches and all(w.params == count for w in matches), label


def test_counts_are_near_the_published_sizes():
  """SigLIP 2's README: B 86M, L 303M, So400m 400M (its "g 1B" is too rounded to test)."""
  published = {"B": 86e6, "L": 303e6, "So400m": 400e6}
  for w in WEIGHTS.values():
    size = w.variant.split("/")[0]
    if w.encoder in ("siglip", "clip", "vit") and size in published:
      assert abs(w.params / published[size] - 1) < 0.05, (w, published[size])


def test_configs_pick_the_encoder_and_resolution():
  for module, arg, (name, variant, size) in (
      (siglip_b16, "384", ("siglip", "B/16", 384)), (siglip_so400m, "224", ("siglip", "So400m/14", 224)),
      (clip_b16, None, ("clip", "B/16", 224)), (vit_b16, None, ("vit", "B/16", 224)),
      (bit_r50, None, ("bit", "R50x1", 224))):
    c = module.get_config(arg) if arg else module.get_config()
    assert (c.model.encoder.name, c.model.encoder.variant, c.data.image_size) == (name, variant,
                                                                                size)
  with pytest.raises(ValueError, match="resolution"):
    siglip_b16.get_config("big")
