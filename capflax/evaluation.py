"""Captioning a split with the jitted decoder and scoring it with the coco-caption metrics."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
from jax.experimental import multihost_utils

from capflax import decode, losses, sharding
from capflax.data import pipeline, sources
from capflax.data.tokenizer import Vocabulary, words
from capflax.metrics import compute_scores
from capflax.models import captioner


def host_slice() -> pipeline.HostSlice:
  return pipeline.HostSlice(jax.process_index(), jax.process_count())


def make_generate(config: ml_collections.ConfigDict, vocab_size: int, mesh):
  """jitted (params, images [b, s, s, 3] uint8) -> greedy tokens [b, max_len + 1]."""
  model = captioner.build(config, vocab_size, decode=True)
  steps = config.data.max_len + 1  # Words, then EOS.
  Captioner = type(model)

  def generate(params, images):
    memory = model.apply({"params": params}, images, method=Captioner.encode)  # [b, n, d]
    b = images.shape[0]
    # A full-length call allocates the self-attention caches and fills the cross-attention ones.
    _, variables = model.apply({"params": params}, memory, jnp.zeros((b, steps + 1), jnp.int32),
                               method=Captioner.decode, mutable=["cache"])

    def tokens_to_logits(tokens, position, cache):
      logits, variables = model.apply(
          {"params": params, "cache": cache}, memory, tokens[:, None], position[None],
          method=Captioner.decode, mutable=["cache"])
      return logits[:, 0], variables["cache"]  # [b, vocab]

    return decode.greedy(tokens_to_logits, variables["cache"], b, steps)

  batch = sharding.batch_sharding(mesh)
  return jax.jit(generate, in_shardings=(sharding.replicated(mesh), batch), out_shardings=batch)


def caption_records(generate, params, records: list[sources.Record], vocab: Vocabulary,
                    config: ml_collections.ConfigDict, mesh) -> dict[str, str]:
  """filename -> generated caption, for every record exactly once (all hosts agree)."""
  global_batch = config.eval.batch_size
  captions: dict[str, str] = {}
  batches = pipeline.eval_dataset(records, image_size=config.data.image_size,
                                  global_batch=global_batch, host=host_slice())
  for b, batch in enumerate(batches):
    images = sharding.global_batch({"image": batch["image"]}, mesh)["image"]
    tokens = multihost_utils.process_allgather(generate(params, images), tiled=True)  # [B, T]
    for row, element in enumerate(range(b * global_batch, (b + 1) * global_batch)):
      if element < len(records):  # Rows past the end are padding.
        captions[records[element].filename] = vocab.decode(tokens[row])
  return captions


def references(records: list[sources.Record]) -> dict[str, list[str]]:
  """Reference captions normalised the way generated ones are written."""
  return {r.filename: [" ".join(words(c)) for c in r.captions] for r in records}


def score(captions: dict[str, str], records: list[sources.Record]) -> dict:
  refs = references(records)
  return compute_scores(captions, {k: refs[k] for k in captions})


@functools.partial(jax.jit, static_argnames=("model",))
def _loss_sums(params, batch, model):
  logits = model.apply({"params": params}, batch["image"], batch["tokens"][:, :-1])
  return losses.token_cross_entropy(logits, batch["tokens"][:, 1:])


def mean_loss(params, model, records, vocab, config, mesh, num_batches: int) -> float:
  """Teacher-forced loss on a fixed sample of (image, caption) pairs."""
  stream = pipeline.train_dataset(
      records, vocab, image_size=config.data.image_size, max_len=config.data.max_len,
      global_batch=config.eval.batch_size, seed=config.seed + 1, host=host_slice())
  total = count = 0.0
  for _ in range(num_batches):
    s, n = _loss_sums(params, sharding.global_batch(next(stream), mesh), model)
    total, count = total + float(s), count + float(n)
  return total / max(count, 1.0)


def sample_table(captions: dict[str, str], records: list[sources.Record], n: int) -> str:
  """A few generated captions beside their references, for logs and the terminal."""
  lines = []
  for r in records[:n]:
    lines.append(f"{r.filename}\n  generated: {captions[r.filename]}")
    lines.extend(f"  reference: {c}" for c in r.captions)
  return "\n".join(lines)
