"""Before a workdir is resumed: is the new config the run it holds?

A resume continues the saved run, so the config must describe that run. Keys are of
three kinds:
  FIXED: they shape the saved state or decide its data (model, vocabulary, optimizer,
    data, seed, batch): a change cannot resume; start fresh in another workdir.
  CHANGEABLE: a run may go on with new values (more steps, other evaluation or decoding,
    checkpoint cadence, mesh), but only when asked: `--accept_changes`.
  FREE: they change no number (log and profiler cadence).
The saved config (`config.json`) is compared before any data is read or state restored,
and replaced by the new one only once the change is accepted; checkpoints are never
touched because a config changed.
"""

import json

import ml_collections
from absl import logging
from etils import epath

from capflax import config_check, run_files
from capflax.errors import WorkdirError

FREE = ("train.log_every", "train.profile_steps", "train.profile_first_step",
        "train.peak_flops_per_device")
CHANGEABLE = ("train.num_steps", "train.num_epochs", "train.eval_every",
              "train.checkpoint_every", "train.keep_checkpoints", "train.keep_every",
              "train.grad_accum_steps", "eval.", "decode.", "mesh.", "model.remat",
              "model.encoder.init_from", "model.encoder.pretrained", "data.on_bad_example")
ACCEPT_FLAG = "--accept_changes"


def _kind(key: str) -> str:
  match = lambda prefixes: any(key == p or (p.endswith(".") and key.startswith(p))
                               for p in prefixes)
  return "free" if match(FREE) else "changeable" if match(CHANGEABLE) else "fixed"


def changes(saved: dict, config: ml_collections.ConfigDict) -> dict[str, tuple]:
  """{key: (saved value, new value)} of every differing key, as JSON sees them."""
  as_json = lambda c: json.loads(json.dumps(c.to_dict()))
  before = config_check.flatten(as_json(config_check.complete(saved)))  # + newer fields
  after = config_check.flatten(as_json(config))
  missing = object()
  return {k: (before.get(k, missing), after.get(k, missing)) for k in sorted(before | after)
          if before.get(k, missing) != after.get(k, missing)}


def _show(diff: dict) -> str:
  shown = [f"{k} {v[0]!r} -> {v[1]!r}" for k, v in list(diff.items())[:6]]
  return ", ".join(shown) + (f" and {len(diff) - 6} more" if len(diff) > 6 else "")


def check(workdir: str, config: ml_collections.ConfigDict, accept_changes: bool = False) -> bool:
  """Raises WorkdirError if `workdir` holds a run `config` cannot continue; True if the
  saved config is to be replaced (there is none, or its changes are accepted)."""
  path = epath.Path(workdir) / run_files.CONFIG
  if not path.exists():
    return True
  try:
    saved = run_files.read_json(path)
  except (ValueError, UnicodeDecodeError) as e:
    raise WorkdirError(f"{path}: unreadable ({e}); restore it, or train in another "
                       f"--workdir.") from None
  diff = changes(saved, config)
  fixed = {k: v for k, v in diff.items() if _kind(k) == "fixed"}
  changeable = {k: v for k, v in diff.items() if _kind(k) == "changeable"}
  if fixed:
    raise WorkdirError(
        f"{workdir} holds a run with another config ({_show(fixed)}): these shape the saved state or "
        f"its data, so it cannot resume with them; to start fresh, train in another "
        f"--workdir (the run there stays as it is).")
  if changeable and not accept_changes:
    raise WorkdirError(
        f"{workdir} holds a run with another config ({_show(changeable)}); rerun with {ACCEPT_FLAG} to "
        f"resume with the new values, or train in another --workdir to start fresh.")
  if changeable:
    logging.warning("Resuming %s with %s (%s).", workdir, _show(changeable), ACCEPT_FLAG)
  return bool(diff)
