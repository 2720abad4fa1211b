"""Cross-attention maps: one distribution over the image per word, causal, drawn per word."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from capflax import attention_maps
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


def test_render_draws_a_panel_per_word_and_heats_the_attended_patch():
  photo = Image.new("RGB", (64, 48), (90, 90, 90))
  attention = np.zeros((2, 4))
  attention[0, 0] = attention[1, 3] = 1.0  # Word 0: top-left patch; word 1: bottom-right.
  sheet = np.asarray(attention_maps.render(photo, ["dog", "<eos>"], attention)).astype(int)
  p = attention_maps.PANEL
  assert sheet.shape == (p + 18, 2 * p, 3)
  top_left, bottom_right = sheet[p // 8, p // 8], sheet[7 * p // 8, 7 * p // 8]
  assert top_left[0] > bottom_right[0] + 60  # Hot (red/yellow) where the weight is.
  second = sheet[:, p:]
  assert second[7 * p // 8, 7 * p // 8, 0] > second[p // 8, p // 8, 0] + 60
  with pytest.raises(ValueError, match="5 image tokens do not form a square grid"):
    attention_maps.render(photo, ["dog"], np.ones((1, 5)) / 5)


def test_the_last_layer_is_the_highest_numbered_one():
  paths = [("decoder", f"decoderblock_{i}", "CrossAttention_0", "weights") for i in (0, 9, 10, 2)]
  assert sorted(paths, key=attention_maps._natural)[-1][1] == "decoderblock_10"


def test_words_stop_at_eos_and_a_caption_without_one_keeps_every_token():
  from capflax.data.tokenizer import Vocabulary
  vocab = Vocabulary(["a", "dog"])  # ids 4, 5
  assert attention_maps.written_words(vocab, [4, 5, 2, 0]) == ["a", "dog", "<eos>"]
  assert attention_maps.written_words(vocab, [4, 5, 4, 5]) == ["a", "dog", "a", "dog"]  # max_len
  assert attention_maps.written_words(vocab, [4, 0, 0, 0]) == ["a"]


def test_map_names_are_unique_for_files_of_one_name():
  assert attention_maps.file_names(["a/x.jpg", "b/x.jpg", "b/y.png"]) == {
      "a/x.jpg": "a__x.png", "b/x.jpg": "b__x.png", "b/y.png": "y.png"}
