"""capflax benchmarks: JSON records on stdout, one line each (train_step gives four).

    python scripts/benchmark.py                       # every measurement
    python scripts/benchmark.py --only=train_step,decode --config=configs/demo.py

Targets are ratios measured within one run (e.g. MFU against a matmul peak measured
in the same process), never absolute timings compared across machines.
"""

import functools
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from capflax import evaluation, hardware, run_record, state, step  # noqa: E402
from capflax import sharding as sharding_lib  # noqa: E402
from capflax.models import captioner  # noqa: E402

MEASUREMENTS = {}


def measurement(fn):
  MEASUREMENTS[fn.__name__] = fn
  return fn


FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/demo.py", "Model and data shapes to measure.")
flags.DEFINE_list("only", [], "Measurements to run (default: all). Available: "
                  "train_step (step time, FLOPs/example, MFU vs a measured matmul peak; the "
                  "configured model, then ViT-S/16, ResNet-50 and BiT-R50x1 at 96 px), "
                  "decode (greedy and beam-4 captions/s, KV cache vs recomputing the prefix, "
                  "time at 40 tokens over 10), "
                  "serve (captions/s through capflax.serve with 32 concurrent HTTP clients over "
                  "1 client, p50/p99 latency), "
                  "metrics (coco-caption metrics vs pycocoevalcap: time and max difference), "
                  "pipeline (input images/s from JPEGs to 224 px batches, per core, and its "
                  "ratio to a configs/base.py train step's images/s), "
                  "sharding (configs/base.py's model at a small batch: the sharded train step "
                  "on 1 and on 8 forced CPU devices as (fsdp 8) and (data 2, fsdp 4); step "
                  "times and the 8-device overhead ratios, all on CPUs; on an accelerator also "
                  "its 1-device step, FLOP/s and MFU where its peak is known), "
                  "feature_cache (a frozen ViT-B/16's train step from stored encoder tokens "
                  "over the step from images: data.cache_features), "
                  "scst_step (the SCST step over the cross-entropy step for the same images, "
                  "and the reward's share of the SCST step).")
flags.DEFINE_integer("repeats", 10, "Timed repetitions after one warm-up call.")
flags.DEFINE_string("scst_workdir", "", "scst_step: a trained workdir whose model, weights, "
                    "vocabulary and train images to use (default: random weights, the worst "
                    "case, with the Flickr8k captions).")
flags.DEFINE_string("sharding_mesh", "", "Internal: 'data,fsdp' sizes, or '1' for one device; "
                    "time only that mesh (the sharding measurement runs itself this way with 8 "
                    "forced CPU devices).")


def _time(fn, *args, repeats: int) -> float:
  """Median seconds per call after a warm-up (which also compiles)."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _time_alternately(f, f_args, g, g_args, repeats: int) -> tuple[float, float]:
  """Median seconds of `f` and of `g`, timed in turn so both see the same machine load."""
  jax.block_until_ready((f(*f_args), g(*g_args)))
  times = []
  for _ in range(repeats):
    pair = []
    for fn, args in ((f, f_args), (g, g_args)):
      start = time.perf_counter()
      jax.block_until_ready(fn(*args))
      pair.append(time.perf_counter() - start)
    times.append(pair)
  return tuple(float(t) for t in np.median(times, axis=0))


def _carried(step_fn, train_state):
  """The step as training calls it: the state is donated, so each call takes the last one's."""
  holder = [train_state]

  def run(batch):
    holder[0], metrics = step_fn(holder[0], batch)
    return metrics
  return run


def _spec_and_state(config, vocab_size: int, mesh=None):
  """The train state as training creates it (sharded over `mesh`, default all devices)."""
  mesh = mesh or sharding_lib.make_mesh()
  spec = state.make_spec(config, vocab_size, mesh, state.Durations(100, 10))
  return spec, jax.jit(spec.init, out_shardings=spec.shardings)(jax.random.PRNGKey(0))


def _random_batch(config, vocab_size: int, b: int) -> dict:
  s = config.data.image_size
  return {"image": np.random.randint(0, 256, (b, s, s, 3), np.uint8),
          "tokens": np.random.randint(4, vocab_size, (b, config.data.max_len + 2), np.int32)}


def matmul_peak(n: int = 2048):
  """A large f32 matmul and its FLOPs: the ceiling MFU is measured against."""
  return jax.jit(lambda a: a @ a), jnp.ones((n, n), jnp.float32), 2 * n**3


# Encoder families at a CPU-feasible size: 96 px images, batch 16, the configured decoder.
FAMILIES = {"vit-S/16": dict(name="vit", variant="S/16"),
            "resnet-50": dict(name="resnet", variant="50"),
            "bit-R50x1": dict(name="bit", variant="R50x1")}


@measurement
def train_step(config, repeats):
  """The configured model's train step, then one per encoder family (FAMILIES): FLOPs per
  example (XLA cost analysis), examples/s and MFU against a matmul peak measured here."""
  records = [step_figures(config, repeats)]
  for label, encoder in FAMILIES.items():
    family = config.copy_and_resolve_references()
    family.model.encoder.update(encoder)
    family.data.image_size, family.train.batch_size = 96, 16
    records.append(step_figures(family, repeats) | {"encoder": label})
  return records


def step_figures(config, repeats):
  """One train step of `config`: seconds, FLOPs/example, examples/s and MFU against a
  matmul timed alternately with it (a shared machine's load then affects both alike)."""
  mesh = sharding_lib.make_mesh()
  vocab_size, b = 2000, config.train.batch_size
  spec, train_state = _spec_and_state(config, vocab_size, mesh)
  batch = _random_batch(config, vocab_size, b)
  train_step = step.make(config, spec, mesh)
  flops = train_step.update.lower(train_state, sharding_lib.global_batch(batch, mesh)).compile(
      ).cost_analysis()["flops"]
  matmul, matrix, matmul_flops = matmul_peak()
  seconds, matmul_s = _time_alternately(_carried(train_step, train_state), (batch,), matmul,
                                        (matrix,), repeats)
  peak = matmul_flops / matmul_s
  return {"encoder": config.model.encoder.variant or f"vit-w{config.model.encoder.width}",
          "batch": b, "step_s": seconds, "flops_per_example": flops / b,
          "examples_per_s": b / seconds, "peak_flops_per_s": peak, "mfu": flops / seconds / peak}


@measurement
def feature_cache(config, repeats):
  """A frozen ViT-B/16 (configs/base.py's model, 224 px, float32, batch 8): the train step
  from stored encoder tokens (data.cache_features) against the step from images, timed
  alternately. `cached_speedup` is their ratio."""
  del config
  from configs import base  # pylint: disable=g-import-not-at-top
  config = base.get_config()
  config.model.dtype = "float32"
  config.model.encoder.frozen = True
  mesh = sharding_lib.make_mesh()
  vocab_size, b, s = 2000, 8, config.data.image_size
  spec, train_state = _spec_and_state(config, vocab_size, mesh)
  from_images = _random_batch(config, vocab_size, b)
  model = spec.model
  features = jax.jit(functools.partial(model.apply, method=type(model).features))(
      train_state.variables, from_images["image"])
  from_features = {"features": np.asarray(features), "tokens": from_images["tokens"]}
  run = _carried(step.make(config, spec, mesh), train_state)  # One state for both.
  uncached_s, cached_s = _time_alternately(run, (from_images,), run, (from_features,), repeats)
  return {"encoder": "vit-B/16 frozen", "batch": b, "image_size": s, "uncached_step_s": uncached_s,
          "cached_step_s": cached_s, "cached_speedup": uncached_s / cached_s,
          "stored_mb_per_image": features[0].nbytes / 1e6}


@measurement
def decode(config, repeats):
  """Captions/s of greedy and beam-4 search (batch 64, 32 tokens), with the KV cache and
  recomputing the whole prefix each step; cost of 40 tokens over 10 (linear: <= 4.5)."""
  config = config.copy_and_resolve_references()
  config.data.max_len = max(config.data.max_len, 40)  # Positions for the longest search.
  mesh = sharding_lib.make_mesh()
  vocab_size, b = 2000, 64
  model = captioner.build(config, vocab_size)
  s = config.data.image_size
  images = np.random.randint(0, 256, (b, s, s, 3), np.uint8)
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), images[:1],
                                  jnp.zeros((1, 4), jnp.int32))
  images = sharding_lib.global_batch({"image": images}, mesh)["image"]
  rng = jax.random.PRNGKey(0)

  def seconds(method, max_len, cached=True):
    # min_len = max_len bans EOS: every caption runs the full length, the worst case.
    config.decode.update(method=method, beam_size=4, max_len=max_len, min_len=max_len)
    generate = evaluation.make_generate(config, vocab_size, mesh, cached=cached)
    return _time(generate, variables, images, rng, repeats=repeats)

  greedy, beam4 = seconds("greedy", 32), seconds("beam", 32)
  greedy_recomputed, beam4_recomputed = seconds("greedy", 32, False), seconds("beam", 32, False)
  return {"batch": b, "max_len": 32, "greedy_captions_per_s": b / greedy,
          "beam4_captions_per_s": b / beam4, "cached_speedup_greedy": greedy_recomputed / greedy,
          "cached_speedup_beam4": beam4_recomputed / beam4,
          "len40_over_len10": seconds("beam", 40) / seconds("beam", 10),
          "greedy_len40_over_len10": seconds("greedy", 40) / seconds("greedy", 10)}


@measurement
def serve(config, repeats):
  """`capflax.serve` over HTTP on loopback: captions/s with 32 concurrent clients over 1
  client (target >= 5: requests batched into the jitted search), p50/p99 latency of each.
  The configured model, randomly initialised, greedy; 64 x 64 JPEGs."""
  import io
  import threading
  import requests
  import waitress
  from PIL import Image
  from capflax import inference, serve as serve_lib
  from capflax.data.tokenizer import Vocabulary
  config = config.copy_and_resolve_references()
  config.decode.method = "greedy"
  vocab = Vocabulary([f"word{i}" for i in range(2000)])
  mesh = sharding_lib.make_mesh()
  s = config.data.image_size
  model = captioner.build(config, len(vocab))
  variables = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, s, s, 3), jnp.uint8),
                                  jnp.zeros((1, 4), jnp.int32))
  variables = jax.device_put(variables, sharding_lib.replicated(mesh))
  engine = serve_lib.Captioner(inference.Run(config, vocab, variables, 0, mesh), [1, 4, 16, 32])
  engine.warm_up(serve_lib.parse_settings({}, config.decode, engine.limits))
  server = waitress.create_server(serve_lib.create_app(engine, 2**24, 10**8), host="127.0.0.1",
                                  port=0, threads=64)
  threading.Thread(target=server.run, daemon=True).start()
  url = f"http://127.0.0.1:{server.effective_port}/api/caption"
  rng = np.random.default_rng(0)
  photos = []
  for _ in range(8):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)).save(buffer, "JPEG")
    photos.append(buffer.getvalue())

  def clients(n: int, per_client: int) -> dict:
    latencies = []

    def client(c):
      with requests.Session() as session:
        for i in range(per_client):
          start = time.perf_counter()
          response = session.post(url, data=photos[(c + i) % len(photos)], timeout=600)
          response.raise_for_status()
          latencies.append(time.perf_counter() - start)

    client(0)  # Warm-up: connections, the first batch.
    latencies.clear()
    engine.batch_fill.clear()
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(n)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    seconds = time.perf_counter() - start
    fill = engine.batch_fill
    return {"captions_per_s": n * per_client / seconds,
            "mean_requests_per_batch": sum(k * v for k, v in fill.items()) / sum(fill.values()),
            "p50_latency_s": float(np.percentile(latencies, 50)),
            "p99_latency_s": float(np.percentile(latencies, 99))}

  one, many = clients(1, 4 * repeats), clients(32, 2 * repeats)
  server.close()
  return {"batch_sizes": engine.batch_sizes, "clients_1": one, "clients_32": many,
          "speedup_32_over_1": many["captions_per_s"] / one["captions_per_s"]}


@measurement
def metrics(config, repeats):
  """BLEU-1..4, ROUGE-L, CIDEr-D on 1000 Flickr8k images x 5 references: time and largest
  difference against pycocoevalcap (targets: >= 20x faster, identical values)."""
  del config
  import csv
  from capflax.data.tokenizer import words
  from capflax.metrics import compute_scores
  import lzma
  path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "flickr8k",
                      "captions.txt.xz")  # The real Kaggle CSV, shipped (see its README).
  refs = {}
  with lzma.open(path, "rt", newline="", encoding="utf-8") as f:
    for image, caption in list(csv.reader(f))[1:]:
      refs.setdefault(image, []).append(" ".join(words(caption)))
  refs = dict(list(refs.items())[:1001])
  keys = list(refs)
  # 1000 images x 5 references; each hypothesis is a caption of the next image.
  hyps = {k: refs[keys[i + 1]][0] for i, k in enumerate(keys[:-1])}
  refs = {k: refs[k] for k in hyps}
  from pycocoevalcap.bleu.bleu import Bleu
  from pycocoevalcap.cider.cider import Cider
  from pycocoevalcap.rouge.rouge import Rouge
  res = {k: [v] for k, v in hyps.items()}

  def pycocoevalcap():
    bleu, _ = Bleu(4).compute_score(refs, res, verbose=0)
    rouge, _ = Rouge().compute_score(refs, res)
    cider, _ = Cider().compute_score(refs, res)
    return dict(zip(("bleu1", "bleu2", "bleu3", "bleu4"), bleu)) | {"rouge_l": rouge,
                                                                     "cider_d": cider}

  ours, theirs = compute_scores(hyps, refs), pycocoevalcap()
  # Medians of repeated runs: one-off timings on a shared machine are noisy.
  ours_s = _time(lambda: compute_scores(hyps, refs), repeats=repeats)
  theirs_s = _time(pycocoevalcap, repeats=max(1, min(repeats, 3)))
  return {"images": len(hyps), "seconds": ours_s, "pycocoevalcap_seconds": theirs_s,
          "speedup": theirs_s / ours_s,
          "max_abs_diff": max(abs(ours[k] - theirs[k]) for k in theirs)}


def _flickr_like_jpegs(folder: str, count: int) -> None:
  """`count` 500x375 JPEGs with photo-like detail (smooth shapes + grain) in the Kaggle layout."""
  from PIL import Image
  os.makedirs(os.path.join(folder, "Images"))
  rng = np.random.default_rng(0)
  rows = ["image,caption"]
  for i in range(count):
    coarse = Image.fromarray(rng.integers(0, 256, (24, 32, 3), np.uint8))
    smooth = np.asarray(coarse.resize((500, 375), Image.BICUBIC), np.int16)  # [375, 500, 3]
    grain = rng.normal(0, 6, smooth.shape)
    pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(os.path.join(folder, "Images", f"{i}.jpg"), quality=90)
    rows += [f"{i}.jpg,a dog runs across the grass number {i % 7}"] * 5
  with open(os.path.join(folder, "captions.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(rows) + "\n")


@measurement
def pipeline(config, repeats):
  """Input-pipeline images/s from 500x375 JPEGs on disk to 224 px uint8 batches (plain and
  with crop + jitter + flip), per core, and the ratio to the images/s one train step of
  configs/base.py consumes on this machine (target: >= 3, the pipeline never the limit);
  also the images/s of the up-front image check (uncached)."""
  del config
  import tempfile
  from capflax.data import augment, images, sources
  from capflax.data import pipeline as pipeline_lib
  from capflax.data.tokenizer import Vocabulary
  from configs import base
  base_config = base.get_config()
  cores = len(os.sched_getaffinity(0))
  batch, batches = 64, 4 * max(repeats, 2)

  def images_per_s(records, vocab, aug):
    stream = pipeline_lib.train_dataset(
        records, vocab, image_size=base_config.data.image_size,
        max_len=base_config.data.max_len, global_batch=batch, seed=0, augment=aug)
    for _ in range(2):  # Warm-up: graph tracing, thread pools, the file cache.
      next(stream)
    start = time.perf_counter()
    for _ in range(batches):
      next(stream)
    return batch * batches / (time.perf_counter() - start)

  with tempfile.TemporaryDirectory() as folder:
    _flickr_like_jpegs(folder, 256)
    records = sources.read_kaggle(folder)
    start = time.perf_counter()
    images.check(records)  # The up-front decode check, uncached: once per new image.
    check_s = time.perf_counter() - start
    vocab = Vocabulary.build((c for r in records for c in r.captions), 1)
    plain = images_per_s(records, vocab, augment.Augment())
    augmented = images_per_s(records, vocab, augment.Augment(0.5, 0.2, True))
  # The base model's step on this machine; a small batch where it is a CPU.
  step_config = base_config.copy_and_resolve_references()
  if jax.devices()[0].platform == "cpu":
    step_config.train.batch_size = 8
  step = step_figures(step_config, min(repeats, 3))
  return {"images_per_s": plain, "images_per_s_per_core": plain / cores, "cores": cores,
          "augmented_images_per_s": augmented, "check_images_per_s": len(records) / check_s,
          "step_batch": step["batch"],
          "step_images_per_s": step["examples_per_s"],
          "ratio_to_step": plain / step["examples_per_s"],
          "augmented_ratio_to_step": augmented / step["examples_per_s"]}


def sharded_step_figures(config, repeats, devices) -> dict:
  """The train step as training runs it (state created sharded by config.mesh, donated):
  seconds, model FLOP/s, and MFU where the devices' peak is known (capflax/hardware.py)."""
  mesh = sharding_lib.make_mesh(config, devices)
  vocab_size, b = 2000, config.train.batch_size
  spec, train_state = _spec_and_state(config, vocab_size, mesh)
  seconds = _time(_carried(step.make(config, spec, mesh), train_state),
                  _random_batch(config, vocab_size, b), repeats=repeats)
  flops_per_s = run_record.training_flops_per_example(config, vocab_size) * b / seconds
  peak = hardware.peak_flops()
  return {"step_s": seconds, "flops_per_s": flops_per_s,
          "mfu": flops_per_s / (peak * mesh.size) if peak else None}


def _scst_inputs(config):
  """(config, train records, vocabulary, a batch of b train images with their captions and
  indices, the workdir to take weights from or ''). Without --scst_workdir: the real Flickr8k
  captions of the first images (tests/fixtures/flickr8k/) with random images, and random
  weights, which never sample EOS: every sample runs to data.max_len + 1 tokens, the SCST
  step's worst case. With it: that run's model, vocabulary, train images and weights, at
  `--config`'s batch size and scst settings."""
  b = config.train.batch_size
  if not FLAGS.scst_workdir:
    import csv
    import lzma
    from capflax.data import sources
    from capflax.data.tokenizer import Vocabulary
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "flickr8k",
                        "captions.txt.xz")
    captions = {}
    with lzma.open(path, "rt", newline="", encoding="utf-8") as f:
      for image, caption in list(csv.reader(f))[1:]:
        captions.setdefault(image, []).append(caption)
    records = [sources.Record(k, k, tuple(v)) for k, v in captions.items()]
    vocab = Vocabulary.build((c for r in records for c in r.captions), 5)
    batch = _random_batch(config, len(vocab), b) | {"image_index": np.arange(b)}
    return config, records, vocab, batch, ""
  from capflax import config_check, run_files
  from capflax.data import dataset, pipeline
  workdir = FLAGS.scst_workdir
  trained = config_check.complete(run_files.load_config(workdir).to_dict())
  trained.train.batch_size, trained.scst = b, config.scst
  records = dataset.load_splits(trained, workdir)["train"]
  vocab = dataset.saved_vocabulary(workdir)
  batch = next(pipeline.train_dataset(records, vocab, image_size=trained.data.image_size,
                                      max_len=trained.data.max_len, global_batch=b, seed=0,
                                      image_index=True))
  return trained, records, vocab, batch, workdir


@measurement
def scst_step(config, repeats):
  """The SCST step (train.objective='scst', scst.num_samples samples per image) over the
  cross-entropy step, for the same model and images, timed alternately (target <= 3 with 5
  samples); and the reward's share of the SCST step: its CIDEr-D on the host, timed alone on
  as many captions (target <= 10%). Inputs: `_scst_inputs`."""
  from capflax import reward as reward_lib
  from capflax import warm_start
  config, records, vocab, batch, workdir = _scst_inputs(config)
  b, samples = config.train.batch_size, config.scst.num_samples
  mesh = sharding_lib.make_mesh()
  runs = {}
  for objective in ("xe", "scst"):
    c = config.copy_and_resolve_references()
    c.train.objective = objective
    spec, train_state = _spec_and_state(c, len(vocab), mesh)
    if workdir:
      train_state, _ = warm_start.initialise(train_state, workdir, vocab, spec.shardings,
                                             bool(c.optim.ema_decay))
    runs[objective] = step.make(c, spec, mesh, records, vocab), train_state
  stage, variables = runs["scst"][0].host_stage, jax.tree.map(jnp.copy, runs["scst"][1].variables)
  xe_batch = {k: v for k, v in batch.items() if k != "image_index"}  # XE reads its captions.
  xe_s, scst_s = _time_alternately(_carried(*runs["xe"]), (xe_batch,), _carried(*runs["scst"]),
                                   (batch,), repeats)
  images = sharding_lib.global_batch({"image": batch["image"]}, mesh)["image"]
  key = jax.random.PRNGKey(0)
  tokens = np.asarray(stage.sample(variables, images, key)).reshape(b * samples, -1)
  tokens = np.concatenate([tokens, np.asarray(stage.greedy(variables, images, key))[:, 0]])
  index = np.concatenate([np.repeat(batch["image_index"], samples), batch["image_index"]])
  reward_s = _time(lambda: stage.reward(index, reward_lib.caption_words(tokens, True)),
                   repeats=repeats)
  words, _ = reward_lib.caption_lengths(tokens[:b * samples])
  return {"weights": workdir or "random", "batch": b, "num_samples": samples,
          "mean_sample_words": float(words.mean()), "xe_step_s": xe_s, "scst_step_s": scst_s,
          "scst_over_xe": scst_s / xe_s, "reward_s": reward_s, "reward_share": reward_s / scst_s}


def _base_shapes(base_config):
  """configs/base.py's model; a small float32 batch where the devices are CPUs (no bf16
  units: bf16 would be emulated)."""
  config = base_config.copy_and_resolve_references()
  if jax.devices()[0].platform == "cpu":
    config.train.batch_size, config.model.dtype = 8, "float32"
  return config


@measurement
def sharding(config, repeats):
  """configs/base.py's train step on 1 forced CPU device and on 8 as (fsdp 8) and (data 2,
  fsdp 4), each in a child process: the overhead of partitioning, both sides of each ratio
  on the same CPUs. On an accelerator, the step on one of its devices (FLOP/s, MFU) is
  reported beside them, never divided by a CPU step.

  Not (data 8): eight float32 replicas of ViT-B/16's parameters and Adam state do not fit
  a small machine's memory, which is what FSDP is for."""
  from configs import base
  repeats = min(repeats, 3)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  cpu = {}
  for mesh in ("1", "1,8", "2,4"):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--only=sharding",
                          f"--sharding_mesh={mesh}", f"--repeats={repeats}"], env=env,
                         capture_output=True, text=True, check=True)
    cpu[mesh] = json.loads(out.stdout.strip().splitlines()[-1])
  record = {"platform": "cpu", "batch": cpu["1"]["batch"], "dtype": cpu["1"]["dtype"],
            "step_s_1dev": cpu["1"]["step_s"], "flops_per_s_1dev": cpu["1"]["flops_per_s"],
            "step_s_8dev": cpu["1,8"]["step_s"], "mesh_8dev": "fsdp 8",
            "overhead_8dev": cpu["1,8"]["step_s"] / cpu["1"]["step_s"],
            "step_s_8dev_data2_fsdp4": cpu["2,4"]["step_s"],
            "overhead_8dev_data2_fsdp4": cpu["2,4"]["step_s"] / cpu["1"]["step_s"]}
  if jax.devices()[0].platform != "cpu":
    accel = _base_shapes(base.get_config())
    one = sharded_step_figures(accel, repeats, jax.devices()[:1])
    record["accelerator_1dev"] = {"batch": accel.train.batch_size, "dtype": accel.model.dtype,
                                  **one}
  return record


def _sharding_child():
  """One mesh's figures for the sharding measurement (run with 8 forced CPU devices);
  '1' is one of them."""
  from configs import base
  config = _base_shapes(base.get_config())
  if FLAGS.sharding_mesh == "1":
    devices = jax.devices()[:1]
  else:
    config.mesh.data, config.mesh.fsdp = (int(x) for x in FLAGS.sharding_mesh.split(","))
    devices = jax.devices()
  print(json.dumps(sharded_step_figures(config, FLAGS.repeats, devices)
                   | {"batch": config.train.batch_size, "dtype": config.model.dtype}), flush=True)


def main(argv):
  del argv
  if FLAGS.sharding_mesh:
    return _sharding_child()
  unknown = set(FLAGS.only) - set(MEASUREMENTS)
  if unknown:
    raise app.UsageError(f"unknown measurement(s) {sorted(unknown)}; "
                         f"available: {sorted(MEASUREMENTS)}")
  for name in FLAGS.only or MEASUREMENTS:
    result = MEASUREMENTS[name](FLAGS.config, FLAGS.repeats)
    for record in result if isinstance(result, list) else [result]:  # One or more records.
      record = {"name": name} | record | {"device": jax.devices()[0].device_kind}
      print(json.dumps(record), flush=True)


if __name__ == "__main__":
  app.run(main)
