"""`config.init_from_workdir`: another run's weights (its EMA ones if it kept one) and
nothing else of its state; its vocabulary and model must be this run's; the run's own
checkpoints win once it has some. End to end with an SCST run after the shared tiny run."""

import json
import logging
import os
import shutil

import jax
import numpy as np
import pytest

from capflax import checkpoint, inference, run_files, sharding, state as state_lib, train
from capflax import warm_start
from capflax.data import dataset
from capflax.data.tokenizer import Vocabulary
from capflax.errors import ConfigError
from configs import demo


def _scst_config(parent: str):
  config = demo.get_config("tiny")
  config.init_from_workdir = parent
  config.train.update(objective="scst", num_steps=4, checkpoint_every=2, eval_every=100,
                      curve_points=0)
  config.eval.splits = ("test",)
  return config


@pytest.fixture(scope="module")
def scst_run(tiny_run, tmp_path_factory):
  parent, _ = tiny_run
  workdir = str(tmp_path_factory.mktemp("scst_run"))
  return parent, workdir, train.train_and_evaluate(_scst_config(parent), workdir)


def _fresh(config, vocab_size: int):
  spec = state_lib.make_spec(config, vocab_size, sharding.make_mesh(), state_lib.Durations(4, 0))
  return spec, jax.jit(spec.init, out_shardings=spec.shardings)(jax.random.PRNGKey(7))


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_the_run_record_names_its_objective_settings_and_parent(scst_run):
  parent, workdir, results = scst_run
  with open(os.path.join(workdir, "run.json")) as f:
    record = json.load(f)
  assert record["objective"] == {"name": "scst", "settings": {
      "scst.num_samples": 5, "scst.baseline": "mean", "scst.bleu4_weight": 0.0,
      "scst.append_eos": True}}
  assert record["init_from"] == {"workdir": parent, "step": 6}
  assert record["seen"]["steps"] == 4 and record["seen"]["examples"] == 4 * 8
  assert np.isfinite(results["eval"]["test"]["cider_d"])
  # The parent's data, not data of its own: no synthetic_data/ was generated here.
  assert not os.path.exists(os.path.join(workdir, "synthetic_data"))


def test_it_takes_the_parents_weights_and_none_of_the_rest(tiny_run):
  parent, _ = tiny_run
  vocab = dataset.saved_vocabulary(parent)
  config = demo.get_config("tiny")
  spec, fresh = _fresh(config, len(vocab))
  opt_before = _leaves(fresh.opt_state)
  state, origin = warm_start.initialise(fresh, parent, vocab, spec.shardings, ema=True)
  assert origin == {"workdir": parent, "step": 6}
  want = _leaves(inference.load(parent).variables["params"])
  for a, b, c in zip(_leaves(state.params), _leaves(state.ema_params), want):
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, c)
  assert int(state.step) == 0
  for a, b in zip(_leaves(state.opt_state), opt_before):  # A fresh optimizer.
    np.testing.assert_array_equal(a, b)


def test_a_parent_with_an_ema_gives_its_ema_weights(tmp_path):
  config = demo.get_config("tiny")
  config.optim.ema_decay = 0.5
  vocab = Vocabulary(f"w{i}" for i in range(56))
  spec, state = _fresh(config, len(vocab))
  state = state.replace(ema_params=jax.tree.map(lambda p: p * 2 + 1, state.params))
  mngr = checkpoint.manager(str(tmp_path), 1)
  checkpoint.save(mngr, state, {"step": 0, "vocab": vocab.itos})
  mngr.wait_until_finished()
  run_files.save_config(tmp_path, config)
  vocab.save(tmp_path / dataset.VOCAB_FILE)
  spec, fresh = _fresh(demo.get_config("tiny"), len(vocab))
  started, _ = warm_start.initialise(fresh, str(tmp_path), vocab, spec.shardings, ema=False)
  for a, b in zip(_leaves(started.params), _leaves(state.ema_params)):
    np.testing.assert_array_equal(a, b)
  assert started.ema_params == {}


def test_another_vocabulary_or_model_is_one_line(tiny_run):
  parent, _ = tiny_run
  vocab = dataset.saved_vocabulary(parent)
  config = demo.get_config("tiny")
  spec, fresh = _fresh(config, len(vocab))
  other = Vocabulary(vocab.itos[4:-1] + ["zebra"])
  with pytest.raises(ConfigError) as error:
    warm_start.initialise(fresh, parent, other, spec.shardings, ema=False)
  assert str(error.value) == (
      f"config.init_from_workdir={parent}: its vocab.json ({len(vocab)} tokens) differs from "
      f"this run's ({len(other)} tokens; first at id {len(vocab) - 1}: "
      f"{vocab.itos[-1]!r} there, 'zebra' here): train on the same data with the same "
      f"data.min_count.")
  config.model.decoder.mlp_dim = 24
  spec, fresh = _fresh(config, len(vocab))
  with pytest.raises(ConfigError, match=r"its parameters do not fit this config's model "
                     r"\(decoder/decoderblock_0/MlpBlock_0/Dense_0/bias: \(32,\) there, "
                     r"\(24,\) here"):
    warm_start.initialise(fresh, parent, vocab, spec.shardings, ema=False)


def test_its_own_checkpoints_win_and_resume_bit_exactly(scst_run, tmp_path, caplog):
  """Sampling draws from (rng, step): the resumed SCST run equals the uninterrupted one."""
  parent, workdir, results = scst_run
  resumed = str(tmp_path / "resumed")
  shutil.copytree(workdir, resumed)
  shutil.rmtree(os.path.join(resumed, "checkpoints", "4"))
  os.remove(os.path.join(resumed, "results.json"))
  with caplog.at_level(logging.INFO):
    again = train.train_and_evaluate(_scst_config(parent), resumed)
  assert any("Starting at step 2 of 4" in r.getMessage() for r in caplog.records)
  assert again["eval"] == results["eval"]
  for a, b in zip(_leaves(inference.load(resumed).variables), _leaves(
      inference.load(workdir).variables)):
    np.testing.assert_array_equal(a, b)
