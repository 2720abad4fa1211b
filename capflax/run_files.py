"""What a workdir holds, in one place: the resolved config, results, and their file names.

`evaluate`, `predict` and reruns rebuild the model from `config.json`, so a workdir is
self-describing; `run.json` (`capflax.run_record`) adds cost and provenance for sweeps.
Paths go through `etils.epath`, so a workdir can be local or a bucket (`gs://...`).
"""

import json

import ml_collections
from etils import epath

from capflax.errors import WorkdirError

CONFIG, RESULTS, RUN_RECORD = "config.json", "results.json", "run.json"


def write_json(path: epath.PathLike, obj) -> None:
  """Atomic: a reader never sees a half-written file (a rename locally; on GCS, whole objects)."""
  path = epath.Path(path)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(obj, indent=2))
  tmp.replace(path)


def read_json(path: epath.PathLike):
  return json.loads(epath.Path(path).read_text())


def save_config(workdir: epath.PathLike, config: ml_collections.ConfigDict) -> None:
  write_json(epath.Path(workdir) / CONFIG, config.to_dict())


def load_config(workdir: epath.PathLike) -> ml_collections.ConfigDict:
  path = epath.Path(workdir) / CONFIG
  if not path.exists():
    raise WorkdirError(f"{path}: missing; is {workdir} a capflax workdir (made by "
                       f"`python -m capflax.main`)?")
  try:
    return ml_collections.ConfigDict(read_json(path))
  except (ValueError, UnicodeDecodeError) as e:
    raise WorkdirError(f"{path}: not a readable config ({e}).") from None
