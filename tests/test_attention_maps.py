"""Cross-attention maps: one distribution over the image per word, causal, drawn per word."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from capflax import attention_maps
from capflax.data.tokenizer import EOS_ID, PAD_ID, Vocabulary
from capflax.models import captioner
from configs import demo


def test_one_causal_distribution_over_the_image_tokens_per_word():
  config = demo.get_config("tiny")
  model = captioner.build(config, vocab_size=20)
  s = config.data.image_size
  images = np.random.default_rng(0).integers(0, 256, (2, s, s, 3), np.uint8)
  tokens = jnp.array([[5, 6, 7, 2, 0], [8, 9, 2, 0, 0]])
  variables = model.init(jax.random.PRNGKey(0), images, tokens)
  weights = attention_maps.cross_attention(model, variables, images, tokens)  # [b, T, n]
  n = (s // config.model.encoder.patch_size) ** 2
  assert weights.shape == (2, 5, n)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
  # Row t attends while choosing tokens[t]: changing later tokens leaves it unchanged.
  changed = attention_maps.cross_attention(model, variables, images, tokens.at[:, 2:].set(11))
  np.testing.assert_allclose(changed[:, :3], weights[:, :3], rtol=1e-5)
  assert not np.allclose(changed[:, 3:], weights[:, 3:])


def test_render_shares_one_colour_scale_and_overlays_the_photo():
  grey = np.array([90, 90, 90])
  photo = Image.new("RGB", (64, 48), tuple(grey))
  attention = np.zeros((3, 4))  # [T, n]: a 2 x 2 grid of image tokens
  attention[0, 0] = 0.8  # Word 0: the top-left patch, the caption's peak.
  attention[1] = 0.2  # Word 1: flat.
  attention[2, 3] = 0.4  # Word 2: the bottom-right patch, half the peak.
  sheet = np.asarray(attention_maps.render(photo, ["dog", "runs", "<eos>"], attention)).astype(int)
  p, label = attention_maps.PANEL, attention_maps.LABEL
  assert sheet.shape == (p + label, 3 * p, 3)
  cmap = colormaps[attention_maps.COLORMAP]

  def expected(fraction):  # The heat over the grey photo at weight = fraction * peak.
    alpha = fraction * attention_maps.MAX_OPACITY
    return np.array(cmap(fraction)[:3]) * 255 * alpha + grey * (1 - alpha)

  corner, far = (2, 2), (p - 3, p - 3)  # Pixels inside the top-left / bottom-right patch.
  np.testing.assert_allclose(sheet[corner], expected(1.0), atol=3)
  np.testing.assert_allclose(sheet[far], grey, atol=1)  # Zero weight: the photo, untinted.
  flat = sheet[:p, p:2 * p]  # The flat word: a faint, even tint on the same scale.
  np.testing.assert_allclose(flat[corner], expected(0.25), atol=3)
  np.testing.assert_allclose(flat[far], expected(0.25), atol=3)
  third = sheet[:p, 2 * p:]
  np.testing.assert_allclose(third[far], expected(0.5), atol=3)
  np.testing.assert_allclose(third[corner], grey, atol=1)
  assert (sheet[p:, :p] < 100).any()  # The label row holds text.
  with pytest.raises(ValueError, match="5 image tokens do not form a square grid"):
    attention_maps.render(photo, ["dog"], np.ones((1, 5)) / 5)


def test_overlays_follow_the_weight_in_colour_and_opacity():
  attention = np.array([[0.0, 0.1, 0.3, 0.6], [0.25, 0.25, 0.25, 0.25]])
  rgba = attention_maps.overlays(attention)  # [T, 2, 2, 4]
  assert rgba.shape == (2, 2, 2, 4) and rgba.dtype == np.uint8
  scaled = attention / 0.6
  expected = colormaps[attention_maps.COLORMAP](scaled)  # [T, n, 4]
  expected[..., 3] = scaled * attention_maps.MAX_OPACITY
  np.testing.assert_allclose(rgba.reshape(2, 4, 4), np.round(expected * 255), atol=0.5)


def test_panel_words_stop_at_eos_or_run_to_max_len():
  vocab = Vocabulary(["dog", "runs"])
  dog, runs = vocab.stoi["dog"], vocab.stoi["runs"]
  assert attention_maps.panel_words(np.array([dog, runs, EOS_ID, PAD_ID]), vocab) == [
      "dog", "runs", "<eos>"]
  assert attention_maps.panel_words(np.array([dog, runs, dog]), vocab) == ["dog", "runs", "dog"]
  assert attention_maps.panel_words(np.array([dog, PAD_ID, PAD_ID]), vocab) == ["dog"]


def test_the_last_layer_is_the_highest_numbered_one():
  paths = [("decoder", f"decoderblock_{i}", "CrossAttention_0", "weights") for i in (0, 9, 10, 2)]
  assert sorted(paths, key=attention_maps._natural)[-1][1] == "decoderblock_10"


def test_map_names_are_unique_for_files_of_one_name():
  assert attention_maps.file_names(["a/x.jpg", "b/x.jpg", "b/y.png"]) == {
      "a/x.jpg": "a__x.png", "b/x.jpg": "b__x.png", "b/y.png": "y.png"}
