"""capflax entry point: `python -m capflax.main --config=configs/demo.py --workdir=DIR`."""

import logging as pylogging
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from capflax import train
from capflax.data.sources import DataError
from capflax.models.pretrained import CheckpointError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file (configs/*.py); override any field as --config.a.b=value.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results; "
                    "rerunning on the same one resumes.")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietOrbax(pylogging.Filter):
  """Drops orbax's dozen INFO lines per checkpoint from the training log; warnings pass."""

  def filter(self, record):
    return record.levelno >= pylogging.WARNING or "/orbax/" not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  logging.get_absl_handler().addFilter(_QuietOrbax())
  logging.info("JAX process %d of %d; local devices: %s", jax.process_index(),
               jax.process_count(), jax.local_devices())
  logging.info("All devices: %s", jax.devices())
  logging.info("Config:\n%s", FLAGS.config)
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (DataError, CheckpointError) as e:  # The user's files, not our code: the message says all.
    sys.exit(f"capflax: {e}")


if __name__ == "__main__":
  app.run(main)
