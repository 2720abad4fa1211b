"""capflax entry point: `python -m capflax.main --config=configs/demo.py --workdir=DIR`."""

import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from capflax import cli, train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file (configs/*.py); override any field as --config.a.b=value.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results; "
                    "rerunning on the same one resumes.")
cli.define_distributed_flags()
flags.adopt_module_key_flags(cli)  # --help lists them too.
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    cli.start(FLAGS)
    logging.info("JAX process %d of %d; local devices: %s", jax.process_index(),
                 jax.process_count(), jax.local_devices())
    logging.info("All devices: %s", jax.devices())
    logging.info("Config:\n%s", FLAGS.config)
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except cli.USER_ERRORS as e:
    sys.exit(f"capflax: {e}")


if __name__ == "__main__":
  app.run(main)
