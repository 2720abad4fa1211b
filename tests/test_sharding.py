"""Mesh shapes, FSDP rules, and the same training steps on 1 device and on 8 (data; data+fsdp)."""

import json
import subprocess
import sys
import textwrap

import pytest
from jax.sharding import PartitionSpec as P

from capflax import sharding
from capflax.errors import ConfigError
from configs import demo
from tests.conftest import REPO, forced_devices_env


def _mesh_config(**sizes):
  config = demo.get_config("tiny")
  config.mesh.update(**sizes)
  return config


@pytest.mark.parametrize("sizes, devices, shape", [
    (dict(data=-1, fsdp=1), 8, (8, 1)), (dict(data=2, fsdp=-1), 8, (2, 4)),
    (dict(data=-1, fsdp=4), 8, (2, 4)), (dict(data=1, fsdp=1), 1, (1, 1))])
def test_mesh_shape_fills_in_the_rest(sizes, devices, shape):
  assert sharding.mesh_shape(_mesh_config(**sizes), devices) == shape


@pytest.mark.parametrize("sizes, message", [
    (dict(data=-1, fsdp=-1), "at most one -1"),
    (dict(data=3, fsdp=-1), r"config.mesh \{'data': 3, 'fsdp': -1\} does not divide the 8"),
    (dict(data=2, fsdp=2), "uses 4 of the 8 devices"),
    (dict(data=0, fsdp=-1), "must be positive")])
def test_mesh_shape_errors_name_the_config(sizes, message):
  with pytest.raises(ConfigError, match=message):
    sharding.mesh_shape(_mesh_config(**sizes), 8)


def test_unknown_mesh_axis_is_named():
  config = demo.get_config("tiny")
  config.mesh.model = 2
  with pytest.raises(ConfigError, match="unknown axis 'model'"):
    sharding.mesh_shape(config, 8)


@pytest.mark.parametrize("shape, fsdp, min_size, spec", [
    ((512, 2048), 4, 1, P(None, "fsdp")),  # Largest divisible dimension.
    ((2048, 512), 4, 1, P("fsdp", None)),
    ((4, 10), 4, 1, P("fsdp", None)),  # 10 is larger but 4 does not divide it.
    ((6, 10), 4, 1, P()),  # Nothing divisible: replicated.
    ((8, 8), 4, 1, P(None, "fsdp")),  # Ties: the last (output features).
    ((512, 2048), 4, 2 ** 21, P()),  # Under the size threshold: replicated.
    ((512, 2048), 1, 1, P()),  # No fsdp axis.
    ((), 4, 0, P())])
def test_fsdp_spec(shape, fsdp, min_size, spec):
  assert sharding.fsdp_spec(shape, fsdp, min_size) == spec


def test_unknown_rule_action_is_named():
  import jax
  mesh = sharding.make_mesh()
  with pytest.raises(ConfigError, match="action 'shard' for 'kernel' must be"):
    sharding.state_shardings({"kernel": jax.ShapeDtypeStruct((4, 4), "float32")}, mesh,
                             [("kernel", "shard")], 1)


# Three steps of the tiny model on fixed batches: 1 device; 8 devices as (data 8); as
# (data 2, fsdp 4) with everything of >= 64 elements sharded; and, without dropout, the
# latter accumulating gradients over 2 micro-batches against 1 device.
SCRIPT = textwrap.dedent("""
    import functools, json
    import jax, numpy as np
    from capflax import sharding, state as state_lib, step as step_lib
    from configs import demo

    rng = np.random.default_rng(0)
    batches = [{"image": rng.integers(0, 256, (16, 16, 16, 3)).astype(np.uint8),
                "tokens": np.concatenate([np.ones((16, 1), np.int32),
                                          rng.integers(4, 13, (16, 13)).astype(np.int32)], 1)}
               for _ in range(3)]
    out = {}
    for name, n, data, fsdp, accum, dropout in [
        ("one", 1, 1, 1, 1, 0.1), ("data", 8, -1, 1, 1, 0.1), ("data_fsdp", 8, 2, 4, 1, 0.1),
        ("one_no_dropout", 1, 1, 1, 1, 0.0), ("fsdp_accum", 8, 2, 4, 2, 0.0)]:
      config = demo.get_config("tiny")
      config.model.decoder.dropout = dropout  # Micro-batches draw their own dropout masks.
      config.mesh.update(data=data, fsdp=fsdp, fsdp_min_size=64)
      mesh = sharding.make_mesh(config, jax.devices()[:n])
      spec = state_lib.make_spec(config, 13, mesh, state_lib.Durations(10, 1))
      state = jax.jit(spec.init, out_shardings=spec.shardings)(jax.random.PRNGKey(0))
      step = jax.jit(functools.partial(step_lib.train_step, model=spec.model, tx=spec.tx,
                                       accum_steps=accum,
                                       micro_sharding=sharding.micro_batch_sharding(mesh)),
                     in_shardings=(spec.shardings, sharding.batch_sharding(mesh)),
                     out_shardings=(spec.shardings, sharding.replicated(mesh)), donate_argnums=0)
      losses = []
      for b in batches:
        state, metrics = step(state, sharding.global_batch(b, mesh))
        losses.append(float(metrics["loss"]))
      leaves = jax.tree_util.tree_leaves_with_path(state)
      split = {sharding.path_name(p): [list(x.shape), list(x.addressable_shards[0].data.shape)]
               for p, x in leaves if x.addressable_shards[0].data.shape != x.shape}
      out[name] = {"losses": losses, "split": split, "mesh": dict(mesh.shape),
                   "leaves": len(leaves)}
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def eight_device_steps():
  out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True,
                       env=forced_devices_env(8), timeout=400, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_same_losses_on_one_and_eight_devices_with_data_and_fsdp_meshes(eight_device_steps):
  runs = eight_device_steps
  assert runs["data"]["mesh"] == {"data": 8, "fsdp": 1}
  assert runs["data_fsdp"]["mesh"] == {"data": 2, "fsdp": 4}
  for name, reference in (("data", "one"), ("data_fsdp", "one"),
                          ("fsdp_accum", "one_no_dropout")):
    assert len(set(runs[reference]["losses"])) == 3  # The loss moved: the steps did something.
    assert runs[name]["losses"] == pytest.approx(runs[reference]["losses"], abs=1e-5), name


def test_fsdp_splits_parameters_and_their_optimizer_moments(eight_device_steps):
  assert not eight_device_steps["one"]["split"] and not eight_device_steps["data"]["split"]
  split = eight_device_steps["data_fsdp"]["split"]
  kernel = "decoder/decoderblock_0/MlpBlock_0/Dense_0/kernel"
  name = "params/" + kernel
  shape, shard = split[name]
  assert shape == [16, 32] and shard == [16, 8]  # Largest dimension split 4 ways.
  moments = [n for n in split if n.startswith("opt_state") and n.endswith(kernel)]
  assert len(moments) == 2 and all(split[n] == split[name] for n in moments)  # Adam mu, nu.
  assert not any("batch_stats" in n or n in ("step", "rng") for n in split)


def test_command_line_names_a_mesh_that_does_not_fit(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "capflax.main", "--config=configs/demo.py:tiny",
       f"--workdir={tmp_path}", "--config.mesh.data=3", "--config.mesh.fsdp=-1"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert out.returncode == 1 and "Traceback" not in out.stderr
  assert out.stderr.strip().splitlines()[-1] == (
      "capflax: config.mesh {'data': 3, 'fsdp': -1} does not divide the 1 devices.")
