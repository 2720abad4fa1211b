"""Captioning a split with the jitted decoder and scoring it with the coco-caption metrics."""

import dataclasses
import functools

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from PIL import Image

from capflax import decode, losses, sharding
from capflax.data import pipeline, scene_file, sources
from capflax.data.tokenizer import UNK_ID, Vocabulary
from capflax.metrics import scene
from capflax.errors import ConfigError
from capflax.metrics.coco import coco_scores
from capflax.models import captioner


def host_slice() -> pipeline.HostSlice:
  return pipeline.HostSlice(jax.process_index(), jax.process_count())


def decode_settings(config: ml_collections.ConfigDict) -> dict:
  """`config.decode` resolved and checked: max_len 0 means data.max_len + 1 (words + EOS)."""
  d = config.decode.to_dict()
  limit = config.data.max_len + 1
  d["max_len"] = d["max_len"] or limit
  if not 1 <= d["max_len"] <= limit:
    raise ValueError(f"decode.max_len must be in 1..{limit} (data.max_len + 1), "
                     f"got {d['max_len']}.")
  methods = tuple(decode.METHODS)
  if d["method"] not in methods:
    raise ValueError(f"decode.method must be {', '.join(map(repr, methods[:-1]))} or "
                     f"{methods[-1]!r}, got {d['method']!r}.")
  if d["beam_size"] < 1:
    raise ValueError(f"decode.beam_size must be >= 1, got {d['beam_size']}.")
  return d


def make_generate(config: ml_collections.ConfigDict, vocab_size: int, mesh, *,
                  num_return: int = 1, cached: bool = True, tunable: bool = False):
  """jitted (variables, images [b, s, s, 3] uint8, rng) -> tokens [b, num_return, max_len].

  `variables` holds `params` and `batch_stats` (empty unless the encoder has BatchNorm).
  `tunable=True` adds two arguments, (..., rng, alpha, temperature): the length penalty and
  the sampling temperature as traced scalars instead of `config.decode`'s constants, so
  that a server changes them per request without recompiling.

  Searches as `config.decode` says (`decode.search`), over the captioner's own decoding
  functions (`captioner.Decoding`); `cached=False` recomputes the prefix at every step.
  """
  d = decode_settings(config)
  rules = decode.Constraints(min_len=d["min_len"], no_repeat_ngram_size=d["no_repeat_ngram_size"],
                             banned=(UNK_ID,) if d["ban_unk"] else ())
  if d["method"] == "greedy" and num_return != 1:
    raise ConfigError(f"greedy decoding returns one caption per image, not {num_return}.")
  if d["method"] == "beam" and num_return > d["beam_size"]:
    raise ConfigError(f"num_return {num_return} exceeds decode.beam_size {d['beam_size']}.")
  settings = decode.Search(d["method"], d["max_len"], d["beam_size"], d["top_k"], d["top_p"], rules)
  model = captioner.decoding(config, vocab_size, d["max_len"], cached)

  def generate(variables, images, rng, alpha, temperature):
    params = variables["params"]
    cache = model.first_cache(params, model.encode(variables, images))
    return decode.search(settings, model.tokens_to_logits(params), cache, images.shape[0],
                         num_return, rng, alpha, temperature)  # [b, R, T]

  batch = sharding.batch_sharding(mesh)
  replicated = sharding.replicated(mesh)
  # Variables stay as they are (replicated, or FSDP-sharded in training).
  if tunable:
    return jax.jit(generate, in_shardings=(None, batch) + (replicated,) * 3,
                   out_shardings=batch)
  return jax.jit(functools.partial(generate, alpha=d["alpha"], temperature=d["temperature"]),
                 in_shardings=(None, batch, replicated), out_shardings=batch)


def caption_records(generate, variables, records: list[sources.Record], vocab: Vocabulary,
                    config: ml_collections.ConfigDict, mesh) -> dict[str, str]:
  """filename -> generated caption, for every record exactly once (all hosts agree)."""
  global_batch = config.eval.batch_size
  captions: dict[str, str] = {}
  batches = pipeline.eval_dataset(records, image_size=config.data.image_size,
                                  global_batch=global_batch, host=host_slice())
  for b, batch in enumerate(batches):
    images = sharding.global_batch({"image": batch["image"]}, mesh)["image"]
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), b)  # Used by sampling only.
    tokens = generate(variables, images, rng)[:, 0]  # [B, T]
    tokens = multihost_utils.process_allgather(tokens, tiled=True)
    for row, element in enumerate(range(b * global_batch, (b + 1) * global_batch)):
      if element < len(records):  # Rows past the end are padding.
        captions[records[element].filename] = vocab.decode(tokens[row])
  return captions


def score(captions: dict[str, str], records: list[sources.Record],
          with_meteor: bool = False) -> dict:
  """coco-caption's numbers: captions and raw references PTB-tokenised, then scored."""
  refs = {r.filename: r.captions for r in records}
  return coco_scores(captions, {k: refs[k] for k in captions}, with_meteor)


LOSS_SAMPLE_SEED = 1


@functools.partial(jax.jit, static_argnames=("model",))
def _loss_sums(variables, batch, model):
  logits, _ = captioner.teacher_forced(model, variables, batch)  # [b, l, vocab]
  return losses.token_cross_entropy(logits, batch["tokens"][:, 1:])


def mean_loss(variables, model, records, vocab, config, mesh, num_batches: int) -> float:
  """Teacher-forced loss on a fixed sample of (image, caption) pairs: the same for every
  run seed, so that runs differing only in seed are compared on the same pairs."""
  stream = pipeline.train_dataset(
      records, vocab, image_size=config.data.image_size, max_len=config.data.max_len,
      global_batch=config.eval.batch_size, seed=LOSS_SAMPLE_SEED, host=host_slice())
  total = count = 0.0
  for _ in range(num_batches):
    s, n = _loss_sums(variables, sharding.global_batch(next(stream), mesh), model)
    total, count = total + float(s), count + float(n)
  return total / max(count, 1.0)


@dataclasses.dataclass
class SplitResult:
  """What evaluating a split gives: every caption, the metrics, and each image's scene score."""
  captions: dict[str, str]  # filename -> generated caption
  metrics: dict  # coco-caption metrics, 'loss', and 'scene' (scene.score_split) with a truth
  scene: dict[str, dict] | None  # filename -> scene.score_caption's result; None: no truth


def evaluate_split(generate, variables, model, records: list[sources.Record], vocab: Vocabulary,
                   config: ml_collections.ConfigDict, mesh, truth: scene_file.Truth | None,
                   with_meteor: bool = False) -> SplitResult:
  """The one evaluation of training's validation, its final evaluation and `capflax.evaluate`:
  caption `records` as `config.decode` says, score them against the references (and the
  scene truth, when the data has one), and measure the teacher-forced loss."""
  captions = caption_records(generate, variables, records, vocab, config, mesh)
  metrics = score(captions, records, with_meteor)
  metrics["loss"] = mean_loss(variables, model, records, vocab, config, mesh,
                              config.eval.loss_batches)
  per_image = None
  if truth is not None:
    metrics["scene"], per_image = scene.score_split(captions, truth)
  return SplitResult(captions, metrics, per_image)


def scalars(prefix: str, metrics: dict) -> dict[str, float]:
  """Metrics as TensorBoard scalars: `prefix/name`, nested ones as `prefix/scene/name`."""
  out = {}
  for k, v in metrics.items():
    if isinstance(v, dict):
      out |= scalars(f"{prefix}/{k}", v)
    elif k != "num_images":
      out[f"{prefix}/{k}"] = v
  return out


def metrics_line(metrics: dict) -> str:
  return ", ".join(f"{k.partition('/')[2]}={v:.4f}" for k, v in scalars("", metrics).items())


def sample_table(captions: dict[str, str], records: list[sources.Record], n: int,
                 truth: scene_file.Truth | None = None) -> str:
  """A few generated captions beside their references (and scene truth), for the terminal."""
  lines = []
  for r in records[:n]:
    lines.append(f"{r.filename}\n  generated: {captions[r.filename]}")
    if truth is not None:
      lines.append(f"  truth:     {describe(truth.scenes[r.filename], truth.attributes)}")
    lines.extend(f"  reference: {c}" for c in r.captions)
  return "\n".join(lines)


def describe(s: scene_file.Scene, attributes: tuple[str, ...]) -> str:
  """'0: small red circle (top left); 1: large blue square (middle); 0 left of 1'."""
  shown = [a for a in attributes if a not in (scene_file.SHAPE, scene_file.PLACE)][::-1] + [
      scene_file.SHAPE]  # Adjectives first: size, colour, then the shape.
  objects = [" ".join(o[a] for a in shown) + (f" ({o[scene_file.PLACE]})" if scene_file.PLACE
                                               in attributes else "") for o in s.objects]
  facts = [f"{i} {rel} {j}" for i, rel, j in sorted(s.relations) if i < j]
  return "; ".join([f"{i}: {o}" for i, o in enumerate(objects)] + facts)


def write_samples(writer, step: int, prefix: str, captions: dict[str, str],
                  records: list[sources.Record], n: int, size: int = 160) -> None:
  """The first n images of `records` with their generated and reference captions, to
  TensorBoard: `prefix`/sample_images, and `prefix`/sample_captions in the same order."""
  chosen = records[:n]
  if not chosen:
    return
  photos = []
  for r in chosen:
    with Image.open(r.path) as image:
      photos.append(np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR)))
  writer.write_images(step, {f"{prefix}/sample_images": np.stack(photos)})  # [n, size, size, 3]
  rows = [f"**{i}. {r.filename}**: {captions[r.filename]}  \n"
          + "  \n".join(f"- {c}" for c in r.captions) for i, r in enumerate(chosen)]
  writer.write_texts(step, {f"{prefix}/sample_captions": "\n\n".join(rows)})
