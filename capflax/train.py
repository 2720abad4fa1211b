"""Training loop: `train_and_evaluate(config, workdir)` trains, checkpoints, evaluates.

Rerunning it on the same workdir resumes from the newest checkpoint: the checkpoint
holds the train state (params, optimizer state, EMA, step, RNG) and the data position,
and the input stream is addressed by element, so a resumed run continues exactly where
the last one stopped. A SIGTERM or Ctrl-C saves and returns; a non-finite loss or
gradient stops the run, naming the step, with the last good checkpoint untouched.

Before anything is read or made, the config is checked (`config_check`), the workdir is
locked for this run alone (`workdir_lock`), and a workdir holding a run is compared with
the config (`resume`): a resume never continues another run's state.
"""

import time

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, parameter_overview, periodic_actions
from etils import epath
from flax.traverse_util import flatten_dict
from jax.experimental import multihost_utils

from capflax import (checkpoint, config_check, curve, evaluation, feature_cache, gallery, hardware,
                     objectives, preemption, resume, run_files, run_record, sharding,
                     step as step_lib, warm_start, workdir_lock)
from capflax.data import augment, dataset, pipeline
from capflax.errors import ConfigError, NonFiniteError
from capflax.models import encoders
from capflax.state import durations, make_spec


def epoch_size(config: ml_collections.ConfigDict, train_records) -> int:
  """Elements per epoch: (image, caption) pairs, or images with `captions_per_image` 'one' or
  'group'."""
  return pipeline.epoch_elements(train_records, config.data.captions_per_image)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       accept_changes: bool = False) -> dict:
  """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the results.

  A run stopped by SIGTERM or SIGINT returns {'preempted': True, 'step': ..., 'signal': ...}
  after saving. `accept_changes`: resume although `resume.CHANGEABLE` fields changed.
  """
  start_time = time.time()  # Wall time includes loading data and compiling.
  config_check.check(config)
  if config.init_from_workdir:
    warm_start.check(config.init_from_workdir)
  lead = jax.process_index() == 0
  workdir_lock.prepare(workdir)
  with workdir_lock.hold(workdir, lead):
    resume.check(workdir, config, accept_changes)
    return _train_and_evaluate(config, workdir, start_time, lead)


def _train_and_evaluate(config, workdir, start_time, lead) -> dict:
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)  # A bucket's, which prepare leaves.
  if lead:  # Generated or exported data is written once, then every process reads it.
    dataset.resolve_dir(config, workdir)
  multihost_utils.sync_global_devices("capflax_data_ready")
  splits = dataset.load_splits(config, workdir)
  vocab = dataset.vocabulary(config, workdir, splits["train"])
  truth = dataset.scene_truth(config, workdir)
  phases = _Phases(start_time)  # Where the wall time goes: data, compile, train, evaluation.
  phases.mark("data")
  if lead:
    run_files.save_config(workdir, config)
  writer = metric_writers.create_default_writer(workdir, just_logging=not lead)

  mesh = sharding.make_mesh(config)
  _check_batch_sizes(config, mesh)
  feature_cache.check(config)
  elements = epoch_size(config, splits["train"])
  flops_per_example = run_record.training_flops_per_example(config, len(vocab))  # Compiles.
  length = durations(config, elements, flops_per_example)
  if config.train.flops_budget:
    logging.info("train.flops_budget %.4g: %d steps of %.4g FLOPs each (%.4g FLOPs).",
                 config.train.flops_budget, length.total_steps,
                 flops_per_example * config.train.batch_size,
                 flops_per_example * config.train.batch_size * length.total_steps)
  spec = make_spec(config, len(vocab), mesh, length)
  mngr = checkpoint.manager(workdir, config.train.keep_checkpoints, config.train.keep_every)
  restored = checkpoint.restore_latest(mngr, workdir, spec.abstract)
  if restored is None:
    state = jax.jit(spec.init, out_shardings=spec.shardings)(jax.random.PRNGKey(config.seed))
    meta = {"step": 0, "data": {"next_element": 0}, "seen": {"examples": 0, "tokens": 0},
            "elapsed_s": 0.0}
    # Fresh runs only: a resumed run has its own weights.
    if config.init_from_workdir:
      state, meta["init_from"] = warm_start.initialise(
          state, config.init_from_workdir, vocab, spec.shardings, bool(config.optim.ema_decay))
    elif config.model.encoder.init_from:
      state = state.replace(params=encoders.load_encoder(config, state.params))
    writer.write_hparams(_hparams(config))
  else:
    state, meta = restored
    if meta["vocab"] != vocab.itos:
      raise ConfigError(f"{workdir}/{dataset.VOCAB_FILE} differs from the vocabulary saved in "
                        f"checkpoint {meta['step']}; restore the workdir's vocab.json.")
  parameter_overview.log_parameter_overview(state.params)
  start_step = int(state.step)
  elapsed_before = meta["elapsed_s"]  # Wall time of the attempts before this one.
  logging.info("Starting at step %d of %d (%.2f epochs of %d elements) on %d device(s), mesh %s.",
               start_step, length.total_steps, length.total_steps * config.train.batch_size
               / elements, elements, mesh.size, dict(mesh.shape))

  t = config.train
  step_fn = step_lib.make(config, spec, mesh, splits["train"], vocab)
  phases.mark("compile")  # Initialising the state compiles it.
  cached = config.data.cache_features
  # A host stage reads each image's references (SCST); stored encoder tokens replace images.
  host_stage = objectives.OBJECTIVES[t.objective].host_stage is not None
  stream = pipeline.train_dataset(
      splits["train"], vocab, image_size=config.data.image_size, max_len=config.data.max_len,
      global_batch=t.batch_size, seed=config.seed, start_element=meta["data"]["next_element"],
      captions_per_image=config.data.captions_per_image, group_size=config.data.group_size,
      host=evaluation.host_slice(),
      augment=augment.Augment.from_config(config.data.augment),
      image_index=cached or host_stage, images=not cached)
  if cached:  # The frozen encoder's tokens of every train image, then batches of them.
    store = feature_cache.features(config, workdir, splits["train"], spec.model,
                                   {"params": state.params, "batch_stats": state.batch_stats},
                                   mesh)
    stream = ({"features": store[b["image_index"]], "tokens": b["tokens"]} for b in stream)
  batch = next(stream)  # Host-local: the step makes it global.
  phases.mark("data")
  peak = hardware.peak_flops(t.peak_flops_per_device)
  logging.info("Training step: %.3g FLOPs per example (XLA cost analysis); %s.",
               flops_per_example,
               f"peak {peak:.3g} FLOP/s per device" if peak else "no peak FLOP/s known for "
               f"{jax.devices()[0].device_kind}: no MFU (set train.peak_flops_per_device)")

  generate = evaluation.make_generate(config, len(vocab), mesh)
  progress = periodic_actions.ReportProgress(num_train_steps=length.total_steps, writer=writer,
                                             every_secs=30)
  hooks = [progress]
  if t.profile_steps and lead:
    hooks.append(periodic_actions.Profile(
        logdir=workdir, num_profile_steps=t.profile_steps, profile_duration_ms=None,
        first_profile=t.profile_first_step, every_secs=None))
  pending: list[tuple[int, dict]] = []  # Per-step metrics not yet checked and logged.
  timer = _Timer()
  train_loss, preempted = None, False
  try:  # However the loop ends, checkpoints already started are completed.
    with preemption.Notice(mngr) as notice:
      for step in range(start_step + 1, length.total_steps + 1):
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
          state, metrics = step_fn(state, batch)
        if step == start_step + 1:
          phases.mark("compile")  # The first call compiles (or loads from the XLA cache).
        pending.append((step, metrics))
        for hook in hooks:
          hook(step)
        last = step == length.total_steps
        preempted = notice.reached(step) and not last
        save = preempted or last or step % t.checkpoint_every == 0
        validate = step % t.eval_every == 0 and not last
        curve_point = validate or (length.curve_every and step % length.curve_every == 0
                                   and not last)
        if save or curve_point or step % t.log_every == 0:
          means = _check_and_average(pending, workdir)  # Nothing non-finite is ever saved.
          meta = _advance(meta, step, means["steps"] * t.batch_size, means["tokens"])
          meta["elapsed_s"] = elapsed_before + time.time() - start_time
          pending = []
          train_loss = means["loss"]
          examples_per_s = t.batch_size * means["steps"] / timer.lap()
          writer.write_scalars(step, {f"train/{k}": v for k, v in _throughput(
              examples_per_s, flops_per_example, peak, mesh.size).items()}
              | {f"train/{k}": v for k, v in means.items() if k not in ("steps", "tokens")}
              | {"train/lr": float(spec.lr(step - 1))})
        if save:
          checkpoint.save(mngr, state, meta | {"vocab": vocab.itos})
        if preempted:
          break
        if not last:
          batch = next(stream)
        if curve_point:
          phases.mark("train")
          val = _validate(config, state.eval_variables, spec.model, generate, splits["val"],
                          vocab, mesh, writer, step, truth, loss_only=not validate)
          if lead:
            curve.append(workdir, curve.point(step, meta["seen"]["examples"],
                                              meta["seen"]["tokens"], flops_per_example, val))
          timer.lap()  # Validation is not training time.
          phases.mark("evaluation")
  finally:
    mngr.wait_until_finished()
  if preempted:
    logging.warning("Preempted at step %d: checkpoint saved in %s; rerun the same command to "
                    "resume.", int(state.step), workdir)
    writer.flush()
    return {"preempted": True, "step": int(state.step), "signal": notice.signal or "SIGTERM"}

  jax.block_until_ready(state)
  phases.mark("train")
  results = _final_evaluation(config, state, generate, splits, vocab, mesh, writer, workdir,
                              train_loss, spec.model, truth)
  phases.mark("evaluation")
  steps_run = int(state.step) - start_step
  results["time_s"] = phases.seconds
  train_flops_per_s = (steps_run * t.batch_size * flops_per_example
                       / max(phases.seconds.get("train", 0.0), 1e-9))
  logging.info("Time split: %s (%.1f s in all); the train step ran at %.3g FLOP/s over %d "
               "steps.", ", ".join(f"{k} {v:.1f} s" for k, v in phases.seconds.items()),
               sum(phases.seconds.values()), train_flops_per_s, steps_run)
  results["wall_time_s"] = elapsed_before + time.time() - start_time
  if lead:  # The run record first: results.json marks a finished run.
    if "val" in results["eval"]:  # The curve ends at the final evaluation.
      curve.append(workdir, curve.point(int(state.step), meta["seen"]["examples"],
                                        meta["seen"]["tokens"], flops_per_example,
                                        results["eval"]["val"]))
    run_record.write(workdir, config, params=state.params, flops_per_example=flops_per_example,
                     steps=int(state.step), examples_seen=meta["seen"]["examples"],
                     tokens_seen=meta["seen"]["tokens"], wall_time_s=results["wall_time_s"],
                     results=results, init_from=meta.get("init_from"))
    run_files.write_json(epath.Path(workdir) / run_files.RESULTS, results)
  writer.flush()
  return results


def _check_batch_sizes(config, mesh) -> None:
  accum = config.train.grad_accum_steps
  for key, size, per in (("train.batch_size", config.train.batch_size, mesh.size * accum),
                         ("eval.batch_size", config.eval.batch_size, mesh.size)):
    if size % per:
      raise ConfigError(f"config.{key} {size} is not divisible by {per} (the {mesh.size} "
                        f"devices{f' x {accum} accumulation steps' if per != mesh.size else ''}).")


def _throughput(examples_per_s: float, flops_per_example: float, peak: float | None,
                devices: int) -> dict:
  """examples/s, model FLOP/s, and MFU when the devices' peak FLOP/s is known."""
  flops_per_s = examples_per_s * flops_per_example
  out = {"examples_per_s": examples_per_s, "flops_per_s": flops_per_s}
  if peak:
    out["mfu"] = flops_per_s / (peak * devices)
  return out


class _Phases:
  """Wall seconds per phase: `mark(name)` books the time since the previous mark to `name`."""

  def __init__(self, start: float):
    self._last = start
    self.seconds: dict[str, float] = {}

  def mark(self, name: str) -> None:
    now = time.time()
    self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
    self._last = now


class _Timer:
  def __init__(self):
    self._last = time.perf_counter()

  def lap(self) -> float:
    now = time.perf_counter()
    lap, self._last = now - self._last, now
    return max(lap, 1e-9)


def _check_and_average(pending: list[tuple[int, dict]], workdir: str) -> dict:
  """Means of the pending steps' metrics (their tokens summed): loss, gradient norm and the
  objective's own, each over the steps that have it; the first non-finite step stops the run."""
  values = jax.device_get([m for _, m in pending])
  for (step, _), m in zip(pending, values):
    if not (np.isfinite(m["loss"]) and np.isfinite(m["grad_norm"])):
      raise NonFiniteError(
          f"non-finite {'loss' if not np.isfinite(m['loss']) else 'gradient norm'} at step "
          f"{step} (loss {float(m['loss'])}, gradient norm {float(m['grad_norm'])}); stopped "
          f"without saving: the last good checkpoint is in {workdir}/checkpoints.")
  keys = dict.fromkeys(k for m in values for k in m if k != "tokens")  # Some log sometimes.
  means = {k: float(np.mean([m[k] for m in values if k in m])) for k in keys}
  return means | {"steps": len(values), "tokens": int(sum(m["tokens"] for m in values))}


def _advance(meta: dict, step: int, examples: int, tokens: int) -> dict:
  """The run's position after `step`: data consumed, examples and tokens seen."""
  seen = meta["seen"]
  return meta | {"step": step, "data": {"next_element": meta["data"]["next_element"] + examples},
                 "seen": {"examples": seen["examples"] + examples,
                          "tokens": seen["tokens"] + tokens}}


def _validate(config, variables, model, generate, records, vocab, mesh, writer, step, truth,
              loss_only=False) -> dict:
  """Periodic validation on a val subset: `config.decode` captions, metrics and loss (only
  the teacher-forced loss with `loss_only`); returns the metrics."""
  if loss_only:
    loss = evaluation.mean_loss(variables, model, records, vocab, config, mesh,
                                config.eval.loss_batches)
    writer.write_scalars(step, {"val/loss": loss})
    return {"loss": loss}
  subset = records[:config.eval.max_val_images]
  result = evaluation.evaluate_split(generate, variables, model, subset, vocab, config, mesh,
                                     truth)
  writer.write_scalars(step, evaluation.scalars("val", result.metrics))
  evaluation.write_samples(writer, step, "val", result.captions, subset, config.eval.num_samples)
  return result.metrics


def _final_evaluation(config, state, generate, splits, vocab, mesh, writer, workdir, train_loss,
                      model, truth):
  """Captions (`config.decode`), metrics and teacher-forced loss for each split in
  `config.eval.splits`, on disk; with a scene truth, each image's scene score too."""
  results_path = epath.Path(workdir) / run_files.RESULTS
  if train_loss is None and results_path.exists():  # Rerun of a finished run.
    train_loss = run_files.read_json(results_path).get("train_loss")
  step = int(state.step)
  results = {"step": step, "train_loss": train_loss, "eval": {},
             "decode": evaluation.decode_settings(config)}
  for split in config.eval.splits:
    records = splits[split]
    result = evaluation.evaluate_split(generate, state.eval_variables, model, records, vocab,
                                       config, mesh, truth)
    results["eval"][split] = result.metrics
    writer.write_scalars(step, evaluation.scalars(split, result.metrics))
    logging.info("%s: %s", split, evaluation.metrics_line(result.metrics))
    evaluation.write_samples(writer, step, split, result.captions, records,
                             config.eval.num_samples)
    gallery.write(workdir, split, step, result.metrics, records, result.captions, config=config,
                  variables=state.eval_variables, vocab=vocab, scene=result.scene)
    if jax.process_index() == 0:
      run_files.write_json(epath.Path(workdir) / f"captions_{split}.json", result.captions)
      if result.scene is not None:
        run_files.write_json(epath.Path(workdir) / f"scene_{split}.json", result.scene)
      print(f"\n{split} samples (step {step}):\n" + evaluation.sample_table(
          result.captions, records, config.eval.num_samples, truth))
      print(f"{split} metrics: " + evaluation.metrics_line(result.metrics))
  return results


def _hparams(config: ml_collections.ConfigDict) -> dict:
  """The config as TensorBoard hparams: dotted names, scalar values (others as text)."""
  return {k: v if isinstance(v, (int, float, str, bool)) else str(v)
          for k, v in flatten_dict(config.to_dict(), sep=".").items()}
