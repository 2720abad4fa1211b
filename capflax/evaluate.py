"""Caption a split of a trained workdir and score it as coco-caption does.

    python -m capflax.evaluate --workdir=DIR --split=test [--beam_size=4 --alpha=0.6 ...]

Every image of the split is decoded exactly once (each host runs the same number of
padded batches) and the metrics are computed once; DIR/eval_SPLIT.json receives the
step, the decode settings, the metrics and every caption.
"""

import json

import jax
from absl import app, flags
from etils import epath

from capflax import cli, evaluation, inference, run_files
from capflax.data import dataset
from capflax.errors import ConfigError
from capflax.models import captioner

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A capflax workdir (config.json, vocab.json, checkpoints/).")
flags.DEFINE_string("split", "test", "Split to caption: train, val or test.")
flags.DEFINE_integer("batch_size", None, "Global batch size (default: the config's eval one).",
                     lower_bound=1)
flags.DEFINE_bool("meteor", True, "Also compute METEOR with the official jar (needs java).")
flags.DEFINE_string("output", None, "Output file name in the workdir (default eval_SPLIT.json).")
inference.define_decode_flags(flags)
flags.adopt_module_key_flags(inference)  # --help lists the decode flags too.
flags.mark_flags_as_required(["workdir"])


def evaluate(workdir: str, split: str, decode_overrides: dict, batch_size: int | None = None,
             meteor: bool = True, output: str | None = None) -> dict:
  """Captions and metrics of `split`; written to workdir/`output` by the first process."""
  run = inference.load(workdir, decode_overrides)
  config = run.config
  if batch_size:
    config.eval.batch_size = batch_size
  if config.eval.batch_size % run.mesh.size:
    raise ConfigError(f"batch size {config.eval.batch_size} is not divisible by the "
                     f"{run.mesh.size} devices.")
  splits = dataset.load_splits(config, workdir)
  if split not in splits:
    raise ConfigError(f"--split={split!r}: the workdir's data has splits {sorted(splits)}.")
  records = splits[split]
  generate = evaluation.make_generate(config, len(run.vocab), run.mesh)
  captions = evaluation.caption_records(generate, run.variables, records, run.vocab, config,
                                        run.mesh)
  scores = evaluation.score(captions, records, with_meteor=meteor)
  scores["loss"] = evaluation.mean_loss(run.variables, captioner.build(config, len(run.vocab)),
                                        records, run.vocab, config, run.mesh,
                                        config.eval.loss_batches)
  result = {"step": run.step, "split": split, "decode": evaluation.decode_settings(config),
            "metrics": scores, "captions": captions}
  if jax.process_index() == 0:
    run_files.write_json(epath.Path(workdir) / (output or f"eval_{split}.json"), result)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  result = evaluate(FLAGS.workdir, FLAGS.split, inference.decode_overrides(FLAGS),
                    FLAGS.batch_size, FLAGS.meteor, FLAGS.output)
  print(json.dumps({"step": result["step"], "split": result["split"],
                    "decode": result["decode"]} | result["metrics"]))


if __name__ == "__main__":
  cli.run(main, "capflax.evaluate")
