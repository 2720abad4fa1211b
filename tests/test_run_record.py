"""run.json: parameter counts, training FLOPs, git provenance and the record's round trip."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from capflax import run_record
from capflax.models import captioner
from configs import demo
from tests.conftest import REPO


def abstract_params(config, vocab_size):
  model = captioner.build(config, vocab_size)
  s = config.data.image_size
  return jax.eval_shape(model.init, jax.random.PRNGKey(0),
                        jax.ShapeDtypeStruct((1, s, s, 3), jnp.uint8),
                        jax.ShapeDtypeStruct((1, config.data.max_len + 1), jnp.int32))["params"]


def test_vit_b16_encoder_has_the_published_parameter_count():
  """ViT-B/16 at 224 px has 86,567,656 parameters with its 1000-class head (768 * 1000 +
  1000 of them): the encoder without head is the rest."""
  config = demo.get_config("tiny")
  config.model.encoder.update(variant="B/16", class_token=True)
  config.data.image_size = 224
  counts = run_record.parameter_counts(abstract_params(config, 100))
  assert counts["encoder"] == 86_567_656 - (768 * 1000 + 1000)
  assert counts["total"] == counts["encoder"] + counts["decoder"]


def test_decoder_count_is_bridge_plus_decoder_by_formula():
  config = demo.get_config("tiny")
  vocab, e, d = 50, config.model.encoder, config.model.decoder
  w, m = d.width, d.mlp_dim
  attention = 4 * (w * w + w)  # query, key, value, out: kernels and biases
  block = 3 * 2 * w + 2 * attention + (w * m + m) + (m * w + w)  # 3 LayerNorms, self, cross, MLP
  decoder = (vocab * w + (config.data.max_len + 2) * w  # tied embedding, learned positions
             + d.depth * block + 2 * w)  # final LayerNorm
  bridge = e.width * w + w + 2 * w  # Dense + LayerNorm
  counts = run_record.parameter_counts(abstract_params(config, vocab))
  assert counts["decoder"] == bridge + decoder


def test_counts_of_arrays_and_of_shapes_agree():
  config = demo.get_config("tiny")
  model = captioner.build(config, 50)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3), jnp.uint8),
                      jnp.zeros((1, 13), jnp.int32))["params"]
  sizes = {k: sum(x.size for x in jax.tree.leaves(v)) for k, v in params.items()}
  assert run_record.parameter_counts(params) == run_record.parameter_counts(
      abstract_params(config, 50)) == {
          "encoder": sizes["encoder"], "total": sum(sizes.values()),
          "decoder": sum(v for k, v in sizes.items() if k != "encoder")}


def matmul_flops(config, vocab_size, captions=1):
  """Forward matmul FLOPs by hand, times 3 for the backward pass (input and weight
  gradients), less the patch embedding's input gradient, which no one asks for; and the
  part of it that a frozen encoder saves. `captions` per image: the decoder runs that often,
  the encoder once."""
  e, d = config.model.encoder, config.model.decoder
  p, de, dd = e.patch_size, e.width, d.width
  n, l = (config.data.image_size // p) ** 2, config.data.max_len + 1  # image tokens, text tokens
  patch = 2 * n * p * p * 3 * de
  encoder = e.depth * (2 * n * 4 * de * de + 2 * 2 * n * n * de + 2 * 2 * n * de * e.mlp_dim)
  bridge = 2 * n * de * dd
  decoder = d.depth * (2 * l * 4 * dd * dd + 2 * 2 * l * l * dd  # self-attention
                       + 2 * l * 2 * dd * dd + 2 * n * 2 * dd * dd + 2 * 2 * l * n * dd  # cross
                       + 2 * 2 * l * dd * d.mlp_dim)  # MLP
  logits = 2 * l * dd * vocab_size
  total = 3 * (patch + encoder + bridge + captions * (decoder + logits)) - patch
  frozen_saves = 2 * (patch + encoder) - patch + bridge  # encoder backward, bridge input grad
  return total, frozen_saves


def wide_tiny_config():
  config = demo.get_config("tiny")
  config.model.encoder.update(width=256, mlp_dim=1024)
  config.model.decoder.update(width=256, mlp_dim=1024)
  return config


def test_training_flops_match_the_matmul_count():
  """At width 256 matmuls are nearly all the work: XLA's count exceeds the hand count of
  matmuls only by the elementwise ops (LayerNorm, softmax, GELU, ...), a few percent."""
  config = wide_tiny_config()
  total, frozen_saves = matmul_flops(config, 500)
  trained = run_record.training_flops_per_example(config, 500)
  assert 1.0 < trained / total < 1.05
  config.model.encoder.frozen = True  # No backward pass through the encoder.
  saved = trained - run_record.training_flops_per_example(config, 500)
  assert 1.0 < saved / frozen_saves < 1.05


def test_training_flops_of_caption_groups_count_one_encoder_pass_per_image():
  config = wide_tiny_config()
  config.data.update(captions_per_image="group", group_size=5)
  total, _ = matmul_flops(config, 500, captions=5)
  assert 1.0 < run_record.training_flops_per_example(config, 500) / total < 1.05


def test_training_flops_of_a_batchnorm_encoder():
  """ResNet-18's BatchNorm statistics are traced along; a frozen one skips its backward
  pass, about two thirds of its FLOPs."""
  config = demo.get_config("tiny")
  config.model.encoder.update(name="resnet", variant="18")
  trained = run_record.training_flops_per_example(config, 50)
  config.model.encoder.frozen = True
  assert 0.3 < run_record.training_flops_per_example(config, 50) / trained < 0.4


def test_training_flops_count_scanned_blocks_and_are_per_example():
  """XLA counts a loop body once: a scanned encoder must still count every block."""
  config = wide_tiny_config()
  unrolled = run_record.training_flops_per_example(config, 500)
  config.model.update(scan=True, remat=True)
  assert run_record.training_flops_per_example(config, 500) == unrolled
  config.train.batch_size *= 2  # Equal but for summing weight gradients over the batch.
  assert run_record.training_flops_per_example(config, 500) == pytest.approx(unrolled, rel=1e-3)


def git(cwd, *args) -> str:
  return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                        cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_git_state_of_a_repository(tmp_path):
  git(tmp_path, "init", "-q")
  (tmp_path / "a.py").write_text("x = 1\n")
  git(tmp_path, "add", "a.py")
  git(tmp_path, "commit", "-q", "-m", "one")
  assert run_record.git_state(str(tmp_path)) == {
      "commit": git(tmp_path, "rev-parse", "HEAD"), "dirty": False}
  (tmp_path / "a.py").write_text("x = 2\n")
  assert run_record.git_state(str(tmp_path))["dirty"] is True
  git(tmp_path, "commit", "-q", "-am", "two")
  (tmp_path / "new.py").write_text("")  # Untracked source: not reproducible from the commit.
  assert run_record.git_state(str(tmp_path)) == {
      "commit": git(tmp_path, "rev-parse", "HEAD"), "dirty": True}


def test_git_state_without_a_checkout_or_without_git(tmp_path, monkeypatch):
  assert run_record.git_state(str(tmp_path)) == {"commit": None, "dirty": None}
  monkeypatch.setenv("PATH", str(tmp_path))  # No git executable to be found.
  assert run_record.git_state(str(REPO)) == {"commit": None, "dirty": None}


def test_environment_describes_the_capflax_checkout():
  env = run_record.environment()
  inside = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True)
  if inside.returncode:
    assert env["git"] == {"commit": None, "dirty": None}
  else:
    assert env["git"]["commit"] == inside.stdout.strip()
  assert env["packages"]["jax"] == jax.__version__
  assert env["python"] == ".".join(map(str, sys.version_info[:3]))
  assert env["devices"] == {"platform": jax.devices()[0].platform,
                            "kind": jax.devices()[0].device_kind,
                            "count": jax.device_count(), "processes": jax.process_count()}
  assert env["command"] == sys.argv


def test_write_round_trips(tmp_path):
  config = demo.get_config("tiny")
  params = abstract_params(config, 50)
  results = {"step": 6, "train_loss": 3.0, "eval": {
      "val": {"bleu4": 0.1, "cider_d": 0.5, "rouge_l": 0.3, "num_images": 12, "loss": 2.5}}}
  record = run_record.write(str(tmp_path), config, params=params, flops_per_example=1.5e6,
                            steps=6, examples_seen=48, tokens_seen=480, wall_time_s=12.5,
                            results=results)
  assert sorted(os.listdir(tmp_path)) == ["run.json"]
  with open(tmp_path / run_record.RUN_RECORD) as f:
    loaded = json.load(f)
  assert loaded == json.loads(json.dumps(record))
  rebuilt = ml_collections.ConfigDict(loaded["config"])  # The full config, as run.
  # As JSON keeps it: tuple fields (model.encoder.widths) come back as lists.
  assert rebuilt.model.to_dict() == json.loads(json.dumps(config.model.to_dict()))
  assert rebuilt.train.to_dict() == config.train.to_dict()
  assert record["seed"] == config.seed
  assert record["params"] == run_record.parameter_counts(params)
  assert record["flops"] == {"per_example": 1.5e6, "total": 1.5e6 * 48}
  assert record["seen"] == {"steps": 6, "examples": 48, "tokens": 480}
  assert record["wall_time_s"] == 12.5 and record["metrics"] == results["eval"]
  assert set(run_record.environment()) <= set(record)
