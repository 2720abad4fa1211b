"""BatchNorm statistics under data parallelism: 8 devices give the 1-device (global) values."""

import json
import subprocess
import sys
import textwrap

from tests.conftest import REPO, forced_devices_env

SCRIPT = textwrap.dedent("""
    import json
    import jax, numpy as np
    from jax.sharding import AxisType, Mesh
    from capflax import sharding
    from capflax.models import captioner
    from configs import demo

    config = demo.get_config("tiny")
    config.model.encoder.update(name="resnet", variant="18")
    config.data.image_size = 32
    model = captioner.build(config, vocab_size=13)
    rng = np.random.default_rng(0)
    # Each device's shard has its own brightness: per-shard variances are far below the
    # global one, so statistics reduced per device would differ from the global ones.
    level = np.repeat(np.arange(8) * 30, 2)[:, None, None, None]  # [16, 1, 1, 1]
    batch = {"image": (level + rng.integers(0, 20, (16, 32, 32, 3))).astype(np.uint8),
             "tokens": rng.integers(4, 13, (16, 14)).astype(np.int32)}
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), batch["image"][:1],
                                    batch["tokens"][:1])

    def new_stats(variables, images):  # What train_step computes for the statistics.
      _, updated = model.apply(variables, images, train=True, mutable=["batch_stats"],
                               method=type(model).encode)
      return updated["batch_stats"]

    out = {}
    for n in (1, 8):
      mesh = Mesh(np.asarray(jax.devices()[:n]).reshape(n, 1), sharding.AXES,
                  axis_types=(AxisType.Auto,) * 2)
      fn = jax.jit(new_stats,
                   in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)))
      out[n] = jax.tree.map(np.asarray, fn(variables, sharding.global_batch(batch, mesh)["image"]))
    before = jax.tree.leaves(variables["batch_stats"])
    print(json.dumps({
        "devices": jax.device_count(), "leaves": len(before),
        "max_abs_diff": max(float(np.max(np.abs(a - b)))
                            for a, b in zip(jax.tree.leaves(out[1]), jax.tree.leaves(out[8]))),
        "min_change": min(float(np.max(np.abs(a - b)))
                          for a, b in zip(jax.tree.leaves(out[1]), before))}))
""")


def test_batch_norm_statistics_are_global_over_the_sharded_batch():
  out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True,
                       env=forced_devices_env(8), timeout=300, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["devices"] == 8 and result["leaves"] == 40  # mean and var of 20 BatchNorms.
  assert result["min_change"] > 1e-3  # Every statistic moved with the batch.
  assert result["max_abs_diff"] < 1e-6
