"""`WORKDIR/run.json`: what a run was, cost and scored, for comparing runs of a sweep.

results.json says how well a run captions; run.json adds what it took to get there
(parameters, training FLOPs, examples and tokens seen, wall time) and where it came from
(full config, seed, git commit, package versions, devices, command line), so that
`capflax.report` can put runs of a scaling sweep side by side and on compute plots.
"""

import importlib.metadata
import math
import os
import platform
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
from etils import epath

from capflax import config_check, curve, losses, objectives, run_files
from capflax.models import captioner

RUN_RECORD = run_files.RUN_RECORD

# Distributions whose versions decide the numbers; tensorflow comes as either name.
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow",
            "tensorflow-cpu", "tensorflow-datasets", "clu", "ml-collections", "numpy")


def parameter_counts(params) -> dict:
  """Parameters under the top-level "encoder" key, and all the others (bridge + decoder).

  Works on arrays and on `jax.eval_shape` structures alike.
  """
  def count(tree):
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))

  encoder = count(params.get("encoder", {}))
  total = count(params)
  return {"encoder": encoder, "decoder": total - encoder, "total": total}


def _shapes(config: ml_collections.ConfigDict, vocab_size: int, batch: int, captions: int = 1):
  """The model, a training batch's shapes (`captions` per image), and its variables' shapes
  (nothing allocated)."""
  model = captioner.build(config, vocab_size)
  s = config.data.image_size
  images = jax.ShapeDtypeStruct((batch, s, s, 3), jnp.uint8)
  length = config.data.max_len + 2  # BOS .. EOS
  tokens = jax.ShapeDtypeStruct((batch, length) if captions == 1 else (batch, captions, length),
                                jnp.int32)
  init_tokens = jax.ShapeDtypeStruct((batch, length), jnp.int32)
  return model, images, tokens, jax.eval_shape(model.init, jax.random.PRNGKey(0), images,
                                               init_tokens)


def abstract_params(config: ml_collections.ConfigDict, vocab_size: int):
  """The parameters' shapes, for `parameter_counts` before anything is trained."""
  return _shapes(config, vocab_size, 1)[3]["params"]


def training_flops_per_example(config: ml_collections.ConfigDict, vocab_size: int) -> float:
  """Forward + backward FLOPs of the training loss per (image, caption) pair, by XLA.

  XLA's cost analysis counts the body of a loop once, whatever its trip count, so the
  model is counted without `model.scan` (same arithmetic, blocks unrolled) and without
  `model.remat` (recomputation is not model FLOPs), on one global batch: no gradient
  accumulation loop either. Captions count at their padded length, as the hardware runs
  them; an objective that differentiates several captions per image (SCST's samples) counts
  them all, but not the search that sampled them (XLA counts a loop's body once). Only shapes
  are traced; nothing is allocated or compiled.
  """
  config = config.copy_and_resolve_references()
  config.model.update(scan=False, remat=False)
  b = config.train.batch_size
  captions = objectives.OBJECTIVES[config.train.objective].captions_per_image(config)
  model, images, tokens, variables = _shapes(config, vocab_size, b, captions)
  rng = jax.random.PRNGKey(0)
  params = variables.pop("params")  # The rest: BatchNorm statistics, if any.

  def loss(params, others, images, tokens):
    logits, _ = captioner.teacher_forced(model, {**others, "params": params},
                                         {"image": images, "tokens": tokens}, train=True,
                                         rng=rng)  # [b, (k,) l, vocab]
    total, count = losses.token_cross_entropy(logits, tokens[..., 1:])
    return total / count

  lowered = jax.jit(jax.grad(loss)).lower(params, variables, images, tokens)
  return lowered.cost_analysis()["flops"] / b


def git_state(path: str) -> dict:
  """The commit checked out at `path` and whether files differ from it (untracked ones
  too); None for both when `path` is not in a git checkout or git is missing."""
  def git(*args):
    try:
      out = subprocess.run(["git", "-C", path, *args], capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.SubprocessError):
      return None
    return out.stdout if out.returncode == 0 else None

  commit = git("rev-parse", "HEAD")
  status = git("status", "--porcelain") if commit else None
  return {"commit": commit.strip() if commit else None,
          "dirty": bool(status.strip()) if status is not None else None}


def environment() -> dict:
  """Where the numbers came from: source commit, package versions, machine, command line."""
  packages = {}
  for name in PACKAGES:
    try:
      packages[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass  # tensorflow vs tensorflow-cpu: only the installed one is recorded.
  device = jax.devices()[0]
  return {
      "git": git_state(os.path.dirname(os.path.abspath(__file__))),
      "packages": packages,
      "python": platform.python_version(),
      "platform": platform.platform(),
      "devices": {"platform": device.platform, "kind": device.device_kind,
                  "count": jax.device_count(), "processes": jax.process_count()},
      "command": list(sys.argv),
  }


def write(workdir: epath.PathLike, config: ml_collections.ConfigDict, *, params,
          flops_per_example: float, steps: int, examples_seen: int, tokens_seen: int,
          wall_time_s: float, results: dict, init_from: dict | None = None) -> dict:
  """Writes `workdir/run.json` atomically (call on process 0) and returns the record.

  `results` is what `train_and_evaluate` returns: its "eval" maps each split to the
  caption metrics and the teacher-forced "loss". The training curve (`capflax.curve`) is
  read from the workdir. `init_from`: the run whose weights this one started from
  ({'workdir', 'step'}), None for a run from scratch; its FLOPs and data are that run's, not
  counted here.
  """
  objective = config.train.objective
  flat = config_check.flatten(config)
  record = {
      "config": config.to_dict(),
      "seed": config.seed,
      "objective": {"name": objective, "settings": {
          k: flat[k] for k in objectives.OBJECTIVES[objective].fields}},
      "init_from": init_from,
      **environment(),
      "params": parameter_counts(params),
      "flops": {"per_example": flops_per_example,
                "total": flops_per_example * examples_seen},
      "seen": {"steps": steps, "examples": examples_seen, "tokens": tokens_seen},
      "wall_time_s": wall_time_s,
      "metrics": results["eval"],
      "curve": curve.load(workdir),
  }
  run_files.write_json(epath.Path(workdir) / RUN_RECORD, record)
  return record
