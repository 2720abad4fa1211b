"""capflax entry point: `python -m capflax.main --config=configs/demo.py --workdir=DIR`."""

import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from capflax import cli, config_check, resume, train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Config file (configs/*.py); override any field as --config.a.b=value.",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results; "
                    "rerunning on the same one resumes.")
flags.DEFINE_bool(resume.ACCEPT_FLAG.lstrip("-"), False, "Resume although fields that may "
                  "change on resume (num_steps, eval, decode, checkpoint settings) differ from "
                  "the workdir's config.json; fields that shape the state or the data never may.")
cli.define_distributed_flags()
flags.adopt_module_key_flags(cli)  # --help lists them too.
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  config_check.check(FLAGS.config)  # Before anything is joined, read or made.
  cli.start(FLAGS)
  logging.info("JAX process %d of %d; local devices: %s", jax.process_index(),
               jax.process_count(), jax.local_devices())
  logging.info("All devices: %s", jax.devices())
  logging.info("Config:\n%s", FLAGS.config)
  result = train.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.accept_changes)
  if result.get("signal") == "SIGINT":
    print(f"capflax: stopped by Ctrl-C at step {result['step']}; checkpoint saved in "
          f"{FLAGS.workdir}; rerun the same command to resume.", file=sys.stderr)
    sys.exit(cli.INTERRUPTED)


if __name__ == "__main__":
  cli.run(main, "capflax")
