"""Orbax checkpoints of the whole train state, in `workdir/checkpoints`."""

import os

import orbax.checkpoint as ocp


def manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def save(mngr: ocp.CheckpointManager, state) -> None:
  mngr.save(int(state.step), args=ocp.args.StandardSave(state))


def restore_latest(mngr: ocp.CheckpointManager, abstract_state):
  """The newest checkpoint laid out like `abstract_state` (shapes + shardings), or None."""
  step = mngr.latest_step()
  if step is None:
    return None
  return mngr.restore(step, args=ocp.args.StandardRestore(abstract_state))
