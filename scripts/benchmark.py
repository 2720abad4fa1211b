"""capflax benchmarks: one JSON object per measurement on stdout.

    python scripts/benchmark.py                       # every measurement
    python scripts/benchmark.py --only=train_step,decode --config=configs/demo.py

Targets are ratios measured within one run (e.g. MFU against a matmul peak measured
in the same process), never absolute timings compared across machines.
"""

import functools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from capflax import evaluation, optim, sharding, train  # noqa: E402
from capflax.models import captioner  # noqa: E402

MEASUREMENTS = {}


def measurement(fn):
  MEASUREMENTS[fn.__name__] = fn
  return fn


FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/demo.py", "Model and data shapes to measure.")
flags.DEFINE_list("only", [], "Measurements to run (default: all). Available: "
                  "train_step (step time, FLOPs/example, MFU vs a measured matmul peak), "
                  "decode (greedy captions/s with the KV cache), "
                  "metrics (coco-caption metrics vs pycocoevalcap: time and max difference).")
flags.DEFINE_integer("repeats", 10, "Timed repetitions after one warm-up call.")


def _time(fn, *args, repeats: int) -> float:
  """Median seconds per call after a warm-up (which also compiles)."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def matmul_peak_flops(repeats: int) -> float:
  """FLOP/s of a large f32 matmul on the default device: the ceiling MFU is measured against."""
  n = 2048
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  return 2 * n**3 / _time(f, a, repeats=repeats)


@measurement
def train_step(config, repeats):
  mesh = sharding.make_mesh()
  vocab_size = 2000
  model = captioner.build(config, vocab_size)
  tx = optim.make(config, config.train.num_steps)
  state = jax.jit(functools.partial(train.init_state, config, model, tx))(jax.random.PRNGKey(0))
  b, s = config.train.batch_size, config.data.image_size
  batch = sharding.global_batch({
      "image": np.random.randint(0, 256, (b, s, s, 3), np.uint8),
      "tokens": np.random.randint(4, vocab_size, (b, config.data.max_len + 2), np.int32)}, mesh)
  step = jax.jit(functools.partial(train.train_step, model=model, tx=tx))
  flops = step.lower(state, batch).compile().cost_analysis()["flops"]
  seconds = _time(step, state, batch, repeats=repeats)
  peak = matmul_peak_flops(repeats)
  return {"encoder": config.model.encoder.variant or f"vit-w{config.model.encoder.width}",
          "batch": b, "step_s": seconds, "flops_per_example": flops / b,
          "examples_per_s": b / seconds, "peak_flops_per_s": peak, "mfu": flops / seconds / peak}


@measurement
def decode(config, repeats):
  mesh = sharding.make_mesh()
  vocab_size = 2000
  model = captioner.build(config, vocab_size)
  s, b = config.data.image_size, config.eval.batch_size
  images = np.random.randint(0, 256, (b, s, s, 3), np.uint8)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), images[:1],
                               jnp.zeros((1, config.data.max_len + 1), jnp.int32))["params"]
  generate = evaluation.make_generate(config, vocab_size, mesh)
  images = sharding.global_batch({"image": images}, mesh)["image"]
  # Random weights rarely emit EOS: every caption runs to max_len, the worst case.
  seconds = _time(generate, params, images, repeats=repeats)
  return {"batch": b, "max_len": config.data.max_len + 1, "greedy_captions_per_s": b / seconds}


@measurement
def metrics(config, repeats):
  del config
  import csv
  from capflax.data.tokenizer import words
  from capflax.metrics import compute_scores
  path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "flickr8k",
                      "captions.txt")
  if not os.path.exists(path):
    return {"skipped": f"{path} not found"}
  refs = {}
  with open(path, newline="", encoding="utf-8") as f:
    for image, caption in list(csv.reader(f))[1:]:
      refs.setdefault(image, []).append(" ".join(words(caption)))
  refs = dict(list(refs.items())[:1000])
  hyps = {k: v[0] for k, v in refs.items()}  # Leave-one-out: caption 0 against the others.
  refs = {k: v[1:] for k, v in refs.items()}
  start = time.perf_counter()
  ours = compute_scores(hyps, refs)
  ours_s = time.perf_counter() - start
  from pycocoevalcap.bleu.bleu import Bleu
  from pycocoevalcap.cider.cider import Cider
  from pycocoevalcap.rouge.rouge import Rouge
  res = {k: [v] for k, v in hyps.items()}
  start = time.perf_counter()
  bleu, _ = Bleu(4).compute_score(refs, res, verbose=0)
  rouge, _ = Rouge().compute_score(refs, res)
  cider, _ = Cider().compute_score(refs, res)
  theirs_s = time.perf_counter() - start
  theirs = dict(zip(("bleu1", "bleu2", "bleu3", "bleu4"), bleu)) | {"rouge_l": rouge,
                                                                     "cider_d": cider}
  return {"images": len(hyps), "seconds": ours_s, "pycocoevalcap_seconds": theirs_s,
          "speedup": theirs_s / ours_s,
          "max_abs_diff": max(abs(ours[k] - theirs[k]) for k in theirs)}


def main(argv):
  del argv
  unknown = set(FLAGS.only) - set(MEASUREMENTS)
  if unknown:
    raise app.UsageError(f"unknown measurement(s) {sorted(unknown)}; "
                         f"available: {sorted(MEASUREMENTS)}")
  for name in FLAGS.only or MEASUREMENTS:
    record = {"name": name} | MEASUREMENTS[name](FLAGS.config, FLAGS.repeats)
    record["device"] = jax.devices()[0].device_kind
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
  app.run(main)
