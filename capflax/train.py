"""Training loop: `train_and_evaluate(config, workdir)` trains, checkpoints, evaluates.

Rerunning it on the same workdir resumes from the newest checkpoint: the state holds
params, optimizer state, step and RNG, and the input stream is addressed by step, so a
resumed run continues exactly where the last one stopped.
"""

import functools
import json
import os
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from clu import metric_writers, parameter_overview, periodic_actions

from capflax import checkpoint, evaluation, losses, optim, run_files, sharding
from capflax.data import augment, dataset, pipeline
from capflax.models import captioner, pretrained


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any  # BatchNorm running statistics ({} for encoders without BatchNorm).
  opt_state: Any
  rng: jax.Array  # Raw uint32 key: checkpointable as a plain array.

  @property
  def variables(self) -> dict:
    """What `model.apply` takes for evaluation and decoding."""
    return {"params": self.params, "batch_stats": self.batch_stats}


def init_state(config, model, tx, rng) -> TrainState:
  images = jnp.zeros((1, config.data.image_size, config.data.image_size, 3), jnp.uint8)
  tokens = jnp.zeros((1, config.data.max_len + 1), jnp.int32)
  params_rng, state_rng = jax.random.split(rng)
  variables = model.init({"params": params_rng}, images, tokens)
  params = variables["params"]
  return TrainState(step=jnp.array(0, jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                    rng=state_rng)


def train_step(state: TrainState, batch: dict, model, tx) -> tuple[TrainState, dict]:
  """One AdamW step on the mean token cross-entropy of the global batch.

  BatchNorm statistics are means over the global batch: under `jax.jit` with the batch
  sharded along `data`, XLA reduces them across devices.
  """
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def loss_fn(params):
    logits, updated = model.apply(
        {"params": params, "batch_stats": state.batch_stats}, batch["image"],
        batch["tokens"][:, :-1], train=True, rngs={"dropout": dropout_rng},
        mutable=["batch_stats"])  # [b, l, vocab]
    total, count = losses.token_cross_entropy(logits, batch["tokens"][:, 1:])
    return total / jnp.maximum(count, 1.0), updated.get("batch_stats", {})

  (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
  return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                       opt_state=opt_state), metrics


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the results."""
  start_time = time.time()
  os.makedirs(workdir, exist_ok=True)
  splits = dataset.load_splits(config, workdir)
  vocab = dataset.vocabulary(config, workdir, splits["train"])
  lead = jax.process_index() == 0
  if lead:
    run_files.save_config(workdir, config)
  writer = metric_writers.create_default_writer(workdir, just_logging=not lead)

  mesh = sharding.make_mesh()
  for part in ("train", "eval"):
    if config[part].batch_size % mesh.size:
      raise ValueError(f"{part}.batch_size {config[part].batch_size} is not divisible by the "
                       f"{mesh.size} devices.")
  total_steps = config.train.num_steps
  model = captioner.build(config, len(vocab))
  tx = optim.make(config, total_steps)
  lr_schedule = optim.schedule(config, total_steps)

  rng = jax.random.PRNGKey(config.seed)
  init = functools.partial(init_state, config, model, tx)
  abstract = jax.eval_shape(init, rng)
  state_sharding = jax.tree.map(lambda _: sharding.replicated(mesh), abstract)
  mngr = checkpoint.manager(workdir, config.train.keep_checkpoints)
  state = checkpoint.restore_latest(
      mngr, jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                         abstract, state_sharding))
  if state is None:
    state = jax.jit(init, out_shardings=state_sharding)(rng)  # Created in place, already sharded.
    if config.model.encoder.init_from:  # Fresh runs only: a resumed run has its own weights.
      state = state.replace(params=pretrained.load_encoder(config, state.params))
    parameter_overview.log_parameter_overview(state.params)
    writer.write_hparams({k: v for k, v in _flatten(config.to_dict()).items()})
  start_step = int(state.step)
  logging.info("Starting at step %d of %d on %d device(s).", start_step, total_steps, mesh.size)

  step_fn = jax.jit(functools.partial(train_step, model=model, tx=tx),
                    in_shardings=(state_sharding, sharding.batch_sharding(mesh)),
                    out_shardings=(state_sharding, sharding.replicated(mesh)),
                    donate_argnums=0)
  generate = evaluation.make_generate(config, len(vocab), mesh)
  stream = pipeline.train_dataset(
      splits["train"], vocab, image_size=config.data.image_size, max_len=config.data.max_len,
      global_batch=config.train.batch_size, seed=config.seed, start_step=start_step,
      captions_per_image=config.data.captions_per_image, host=evaluation.host_slice(),
      augment=augment.Augment.from_config(config.data.augment))
  progress = periodic_actions.ReportProgress(num_train_steps=total_steps, writer=writer,
                                             every_secs=30)
  window: list[dict] = []
  train_loss = None
  for step in range(start_step + 1, total_steps + 1):
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      state, metrics = step_fn(state, sharding.global_batch(next(stream), mesh))
    window.append(metrics)
    progress(step, time.time())
    if step % config.train.log_every == 0 or step == total_steps:
      means = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
      window = []
      if not np.isfinite(means["loss"]):
        raise FloatingPointError(f"non-finite training loss at step {step}; the last good "
                                 f"checkpoint is kept in {workdir}/checkpoints.")
      train_loss = means["loss"]
      writer.write_scalars(step, {f"train/{k}": v for k, v in means.items()}
                           | {"train/lr": float(lr_schedule(step - 1))})
    if step % config.train.eval_every == 0 and step != total_steps:
      _validate(config, state.variables, model, generate, splits["val"], vocab, mesh, writer, step)
    if step % config.train.checkpoint_every == 0 or step == total_steps:
      checkpoint.save(mngr, state)
  mngr.wait_until_finished()

  results = _final_evaluation(config, state, generate, splits, vocab, mesh, writer, workdir,
                              train_loss)
  results["wall_time_s"] = time.time() - start_time
  if lead:
    run_files.write_json(os.path.join(workdir, run_files.RESULTS), results)
  writer.flush()
  return results


def _validate(config, variables, model, generate, records, vocab, mesh, writer, step):
  """Periodic validation: teacher-forced loss and `config.decode` metrics on a val subset."""
  loss = evaluation.mean_loss(variables, model, records, vocab, config, mesh,
                              config.eval.loss_batches)
  subset = records[:config.eval.max_val_images]
  captions = evaluation.caption_records(generate, variables, subset, vocab, config, mesh)
  scores = evaluation.score(captions, subset)
  writer.write_scalars(step, {"val/loss": loss} | {f"val/{k}": v for k, v in scores.items()
                                                   if k != "num_images"})
  evaluation.write_samples(writer, step, "val", captions, subset, config.eval.num_samples)


def _final_evaluation(config, state, generate, splits, vocab, mesh, writer, workdir, train_loss):
  """Captions (`config.decode`) and metrics for each split in `config.eval.splits`, on disk."""
  results_path = os.path.join(workdir, run_files.RESULTS)
  if train_loss is None and os.path.exists(results_path):  # Rerun of a finished run.
    with open(results_path) as f:
      train_loss = json.load(f).get("train_loss")
  step = int(state.step)
  results = {"step": step, "train_loss": train_loss, "eval": {},
             "decode": evaluation.decode_settings(config)}
  for split in config.eval.splits:
    records = splits[split]
    captions = evaluation.caption_records(generate, state.variables, records, vocab, config, mesh)
    scores = evaluation.score(captions, records)
    results["eval"][split] = scores
    writer.write_scalars(step, {f"{split}/{k}": v for k, v in scores.items() if k != "num_images"})
    logging.info("%s: %s", split, ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    evaluation.write_samples(writer, step, split, captions, records, config.eval.num_samples)
    if jax.process_index() == 0:
      run_files.write_json(os.path.join(workdir, f"captions_{split}.json"), captions)
      print(f"\n{split} samples (step {step}):\n"
            + evaluation.sample_table(captions, records, config.eval.num_samples))
      print(f"{split} metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()))
  return results


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out |= _flatten(v, f"{prefix}{k}.")
    else:
      out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
  return out
