"""data.cache_features: a frozen encoder run once per image trains the same model, resumes
exactly, and refuses the settings under which stored tokens would be stale."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from capflax import inference, train
from capflax.data import dataset, pipeline
from capflax.models import captioner
from capflax.errors import ConfigError
from configs import demo


def _config(**data):
  config = demo.get_config("tiny")
  config.model.encoder.frozen = True
  config.train.update(num_steps=6, checkpoint_every=3, keep_checkpoints=10)
  config.eval.splits = ()  # Training only.
  config.data.update(data)
  return config


def _params(workdir):
  run = inference.load(workdir)
  return jax.tree.map(np.asarray, run.variables["params"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  uncached, cached = (str(tmp_path_factory.mktemp(n)) for n in ("uncached", "cached"))
  results = (train.train_and_evaluate(_config(), uncached),
             train.train_and_evaluate(_config(cache_features=True), cached))
  return uncached, cached, results


def test_cached_run_equals_the_uncached_one(runs):
  """Same losses to 1e-5. Parameters to 1e-4: the cross-attention key biases have zero
  gradient in exact arithmetic (softmax ignores a per-query constant), so they carry
  float noise that AdamW's normalisation turns into lr-sized steps."""
  uncached, cached, (a_results, b_results) = runs
  np.testing.assert_allclose(a_results["train_loss"], b_results["train_loss"], rtol=1e-5)
  a, b = _params(uncached), _params(cached)
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, atol=1e-4, err_msg=jax.tree_util.keystr(path))
  assert not os.path.exists(os.path.join(uncached, "features"))


def test_stored_tokens_are_the_encoders(runs):
  _, cached, _ = runs
  run = inference.load(cached)
  config = _config()
  splits = dataset.load_splits(config, cached)
  meta = [f for f in os.listdir(os.path.join(cached, "features")) if f.endswith(".json")][0]
  with open(os.path.join(cached, "features", meta)) as f:
    shape = tuple(json.load(f)["shape"])
  stored = np.memmap(os.path.join(cached, "features", meta.replace(".json", ".npy")),
                     dtype=np.float32, mode="r", shape=shape)
  images = next(pipeline.eval_dataset(splits["train"][:8], image_size=config.data.image_size,
                                      global_batch=8))["image"]
  model = captioner.build(config, len(run.vocab))
  direct = model.apply(run.variables, images, method=type(model).features)
  np.testing.assert_allclose(stored[:8], direct, atol=1e-6)


def test_tokens_are_stored_once_per_train_image(runs):
  _, cached, _ = runs
  files = sorted(os.listdir(os.path.join(cached, "features")))
  assert [f.rsplit(".", 1)[1] for f in files] == ["json", "npy"]
  assert files[0].startswith("host0_")
  config = _config()
  images = len(dataset.load_splits(config, cached)["train"])
  # Each train image once, as a 2x2 grid (16 px, patch 8) of width-16 float32 tokens.
  size = os.path.getsize(os.path.join(cached, "features", files[1]))
  assert size == images * 2 * 2 * config.model.encoder.width * 4


def test_resumed_cached_run_is_bit_identical(runs, tmp_path):
  _, cached, _ = runs
  resumed = str(tmp_path / "resumed")
  shutil.copytree(cached, resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", "6"))
  os.remove(os.path.join(resumed, "results.json"))
  shutil.rmtree(os.path.join(resumed, "features"))  # Recomputed on resume, identically.
  train.train_and_evaluate(_config(cache_features=True), resumed)
  for x, y in zip(jax.tree.leaves(_params(cached)), jax.tree.leaves(_params(resumed))):
    np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("change,message", [
    (lambda c: c.model.encoder.update(frozen=False), "model.encoder.frozen=True"),
    (lambda c: c.data.augment.update(flip=True), "data.augment off"),
])
def test_stale_tokens_are_refused_before_training(tmp_path, change, message):
  config = _config(cache_features=True)
  change(config)
  with pytest.raises(ConfigError, match=message):
    train.train_and_evaluate(config, str(tmp_path))
