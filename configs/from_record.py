"""A run's config, read back from its record: reruns a run from its workdir's files alone.

    python -m capflax.main --config=configs/from_record.py:/path/to/workdir/run.json \
        --workdir=NEW_DIR

The argument is a `run.json` (its "config"), a `config.json`, or a workdir holding either
(run.json preferred); local or a bucket (`gs://...`). Fields can still be overridden on the
command line, e.g. `--config.seed=1`.
"""

import json

import ml_collections
from etils import epath

from capflax import config_check, run_files
from capflax.errors import ConfigError

RECORDS = (run_files.RUN_RECORD, run_files.CONFIG)  # In a workdir: the first one present.


def get_config(path: str) -> ml_collections.ConfigDict:
  path = epath.Path(path)
  if not path.exists():
    raise ValueError(f"{path}: no such run record or workdir.")
  if path.is_dir():
    found = [path / r for r in RECORDS if (path / r).exists()]
    if not found:
      raise ValueError(f"{path}: holds neither {' nor '.join(RECORDS)}; is it a capflax "
                              f"workdir?")
    path = found[0]
  try:
    record = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ValueError(f"{path}: not JSON ({e}).") from None
  # run.json holds the config under "config"; config.json is the config.
  config = record.get("config", record) if isinstance(record, dict) else None
  if not isinstance(config, dict) or not {"data", "model", "train"} <= set(config):
    raise ValueError(f"{path}: not a capflax run.json or config.json (no data/model/train "
                     f"config).")
  config = config_check.complete(config)  # A record older than some fields: their defaults.
  try:
    config_check.check(config)  # Wrong types or unknown keys: the record is named.
  except ConfigError as e:
    raise ValueError(f"{path}: {e}") from None
  return config
