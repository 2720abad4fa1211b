"""Orbax checkpoints in `workdir/checkpoints`: the train state plus a JSON record of where
the run stands (step, data position, examples and tokens seen, vocabulary).

Saves are asynchronous (training continues while the arrays are written) and atomic:
orbax writes into a temporary directory and renames it when complete, so a save cut
short by preemption never looks like a checkpoint. A finished checkpoint that cannot be
read (a truncated file, a half-synced copy) is set aside with a warning and the one
before it is used. One that reads but holds a state of other names or shapes is no
broken file but another run's: that stops with WorkdirError and nothing is moved.
Inference reads through `reader`, which never writes, deletes or cleans anything.
"""

import os

import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath
from jax.experimental import multihost_utils

from capflax.errors import WorkdirError

UNREADABLE = "checkpoints_unreadable"


def _root(workdir: str) -> epath.Path:
  return epath.Path(workdir if "://" in workdir else os.path.abspath(workdir))


def manager(workdir: str, keep: int, keep_every: int = 0) -> ocp.CheckpointManager:
  """Keeps the newest `keep` checkpoints, plus every step divisible by `keep_every` (> 0)."""
  return ocp.CheckpointManager(
      _root(workdir) / "checkpoints",
      options=ocp.CheckpointManagerOptions(
          max_to_keep=keep, keep_period=keep_every or None, create=True,
          enable_async_checkpointing=True,
          cleanup_tmp_directories=True))  # A save cut short by a kill is removed on restart.


def reader(workdir: str) -> ocp.CheckpointManager:
  """The workdir's checkpoints, read-only: a training writing there is left alone."""
  root = _root(workdir) / "checkpoints"
  if not root.is_dir():
    raise WorkdirError(f"{root}: no checkpoints (is {workdir} a capflax workdir that has saved "
                       f"one?).")
  return ocp.CheckpointManager(root, options=ocp.CheckpointManagerOptions(read_only=True))


def save(mngr: ocp.CheckpointManager, state, meta: dict) -> None:
  """Starts writing `state` and `meta` at `meta['step']`; returns before the write ends."""
  mngr.save(meta["step"], args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))


def restore_latest(mngr: ocp.CheckpointManager, workdir: str, abstract_state, *,
                   set_aside: bool = True):
  """(state, meta) of the newest readable checkpoint, laid out like `abstract_state`
  (shapes + shardings), or None when there is none.

  An unreadable checkpoint is skipped with a warning and the previous one tried; with
  `set_aside` (training, which will save that step again) it is also moved to
  WORKDIR/checkpoints_unreadable, kept for inspection, never deleted. A readable one whose
  state has other names or shapes raises WorkdirError (the config describes another run).
  """
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    except Exception as e:  # noqa: BLE001 - any failure to read means: not usable.
      differ = _differences(epath.Path(mngr.directory) / str(step) / "state", abstract_state)
      if differ:
        raise WorkdirError(
            f"checkpoint {step} in {mngr.directory} holds a state of another shape than this "
            f"config's ({'; '.join(differ[:3])}{' ...' if len(differ) > 3 else ''}); it was "
            f"left as it is: train this config in another --workdir.") from None
      reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
      logging.warning("Checkpoint %d in %s is unreadable (%s); %strying the one before.", step,
                      mngr.directory, reason, f"moved it to {UNREADABLE}, " if set_aside else "")
      if set_aside:
        _set_aside(mngr, workdir, step)
      continue
    return restored.state, restored.meta
  return None


def _leaves(tree) -> dict[str, tuple]:
  """'params/decoder/embed/embedding' -> shape, for every array of a state or its metadata."""
  def name(path):
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))))
                    for k in path)
  return {name(p): tuple(leaf.shape) for p, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _differences(state_dir: epath.Path, abstract_state) -> list[str]:
  """How the saved state's arrays differ from `abstract_state`'s ([] if they do not, or if
  the metadata itself cannot be read: then the checkpoint is broken)."""
  try:
    saved = _leaves(ocp.StandardCheckpointer().metadata(state_dir).item_metadata)
  except Exception:  # noqa: BLE001 - unreadable metadata: a broken checkpoint.
    return []
  if not saved:  # Metadata that names no array: broken too.
    return []
  want = _leaves(abstract_state)
  order = lambda keys: sorted(keys, key=lambda k: (not k.startswith("params/"), k))
  out = [f"{k}: saved {saved[k]}, expected {want[k]}" for k in order(saved.keys() & want.keys())
         if saved[k] != want[k]]
  out += [f"{k}: not in this config's state" for k in order(saved.keys() - want.keys())]
  out += [f"{k}: not in the checkpoint" for k in order(want.keys() - saved.keys())]
  return out


def _set_aside(mngr: ocp.CheckpointManager, workdir: str, step: int) -> None:
  if jax.process_index() == 0:
    aside = _root(workdir) / UNREADABLE
    aside.mkdir(parents=True, exist_ok=True)
    target = aside / str(step)
    suffix = 0
    while target.exists():  # An earlier unreadable copy of the same step stays too.
      suffix += 1
      target = aside / f"{step}.{suffix}"
    (epath.Path(mngr.directory) / str(step)).rename(target)
  multihost_utils.sync_global_devices(f"capflax_set_aside_{step}")
  mngr.reload()
