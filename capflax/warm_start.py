"""`config.init_from_workdir=DIR`: a fresh run that starts from another run's weights.

It takes the parameters of DIR's newest complete checkpoint (the EMA ones if that run kept
an EMA) and its BatchNorm statistics, not its optimizer state, step, RNG or data position:
a new phase of training (SCST after cross-entropy), not a resume. The two runs must share
their vocabulary, or the ids would mean other words. A run that has checkpoints of its own
resumes from them instead (`train.py` asks only when there are none).
"""

import jax
import jax.numpy as jnp
from etils import epath

from capflax import inference, run_files, sharding
from capflax.data import dataset
from capflax.data.tokenizer import Vocabulary
from capflax.errors import ConfigError, WorkdirError
from capflax.state import TrainState


def _shapes(tree) -> dict[str, tuple]:
  return {sharding.path_name(p): tuple(x.shape)
          for p, x in jax.tree_util.tree_leaves_with_path(tree)}


def _first_difference(a: list[str], b: list[str]) -> str:
  i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
  show = lambda v: repr(v[i]) if i < len(v) else "nothing"
  return f"id {i}: {show(a)} there, {show(b)} here"


def check(workdir: str) -> None:
  """Before anything is made: `workdir` holds a run to start from (its config, vocabulary
  and checkpoints; which checkpoint is readable is known only when it is read)."""
  missing = [name for name in (run_files.CONFIG, dataset.VOCAB_FILE, "checkpoints")
             if not (epath.Path(workdir) / name).exists()]
  if missing:
    raise ConfigError(f"config.init_from_workdir={workdir}: no {' or '.join(missing)} there; "
                      f"give the workdir of a run that has saved a checkpoint.")


def initialise(state: TrainState, workdir: str, vocab: Vocabulary, shardings: TrainState,
               ema: bool) -> tuple[TrainState, dict]:
  """`state` (freshly initialised) with `workdir`'s weights, laid out by `shardings`; and
  {'workdir', 'step'}: where they came from, for the run record."""
  key = f"config.init_from_workdir={workdir}"
  try:
    parent = inference.load(workdir)
  except WorkdirError as e:
    raise ConfigError(f"{key}: {e}") from None
  if parent.vocab != vocab:
    raise ConfigError(
        f"{key}: its vocab.json ({len(parent.vocab)} tokens) differs from this run's "
        f"({len(vocab)} tokens; first at {_first_difference(parent.vocab.itos, vocab.itos)}): "
        f"train on the same data with the same data.min_count.")
  theirs, ours = _shapes(parent.variables["params"]), _shapes(state.params)
  if theirs != ours:
    differ = [f"{k}: {theirs.get(k, 'missing')} there, {ours.get(k, 'missing')} here"
              for k in sorted(theirs.keys() | ours.keys()) if theirs.get(k) != ours.get(k)]
    raise ConfigError(f"{key}: its parameters do not fit this config's model "
                      f"({'; '.join(differ[:3])}{' ...' if len(differ) > 3 else ''}).")
  params = jax.device_put(parent.variables["params"], shardings.params)
  batch_stats = jax.device_put(parent.variables["batch_stats"], shardings.batch_stats)
  # The EMA, if this run keeps one, starts at the same weights (in buffers of its own).
  ema_params = jax.tree.map(jnp.copy, params) if ema else {}
  return (state.replace(params=params, batch_stats=batch_stats, ema_params=ema_params),
          {"workdir": workdir, "step": parent.step})
