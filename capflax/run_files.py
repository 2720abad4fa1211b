"""What a workdir holds, in one place: the resolved config, results, and their file names.

`evaluate`, `predict` and reruns rebuild the model from `config.json`, so a workdir is
self-describing.
"""

import json
import os

import ml_collections

CONFIG, RESULTS = "config.json", "results.json"


def write_json(path: str, obj) -> None:
  """Atomic: a reader never sees a half-written file."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=2)
  os.replace(tmp, path)


def save_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  write_json(os.path.join(workdir, CONFIG), config.to_dict())


def load_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, CONFIG)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: missing; is {workdir} a capflax workdir (made by "
                            f"`python -m capflax.main`)?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))
