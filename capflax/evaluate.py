"""Caption a split of a trained workdir and score it as coco-caption does.

    python -m capflax.evaluate --workdir=DIR --split=test [--beam_size=4 --alpha=0.6 ...]

Every image of the split is decoded exactly once (each host runs the same number of
padded batches) and the metrics are computed once; DIR/eval_SPLIT.json receives the
step, the decode settings, the metrics and every caption (with a data folder's
scenes.json: the scene scores under metrics.scene, each image's in scene_images).
`--html` also writes DIR/gallery_SPLIT.html (`capflax.gallery`).
"""

import json

import jax
from absl import app, flags
from etils import epath

from capflax import cli, evaluation, gallery, inference, run_files
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
flags.DEFINE_bool("html", False, "Also write DIR/gallery_SPLIT.html: every image with its "
                  "caption, references and scores, sortable, attention maps of the first few.")
inference.define_decode_flags(flags)
flags.adopt_module_key_flags(inference)  # --help lists the decode flags too.
flags.mark_flags_as_required(["workdir"])


def evaluate(workdir: str, split: str, decode_overrides: dict, batch_size: int | None = None,
             meteor: bool = True, output: str | None = None, html: bool = False) -> dict:
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
  generate = evaluation.make_generate(config, len(run.vocab), run.mesh)
  split_result = evaluation.evaluate_split(
      generate, run.variables, captioner.build(config, len(run.vocab)), splits[split], run.vocab,
      config, run.mesh, dataset.scene_truth(config, workdir), with_meteor=meteor)
  result = {"step": run.step, "split": split, "decode": evaluation.decode_settings(config),
            "metrics": split_result.metrics, "captions": split_result.captions}
  if split_result.scene is not None:
    result["scene_images"] = split_result.scene
  if jax.process_index() == 0:
    run_files.write_json(epath.Path(workdir) / (output or f"eval_{split}.json"), result)
  if html:
    gallery.write(workdir, split, run.step, split_result.metrics, splits[split],
                  split_result.captions, config=config, variables=run.variables, vocab=run.vocab,
                  scene=split_result.scene)
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  result = evaluate(FLAGS.workdir, FLAGS.split, inference.decode_overrides(FLAGS),
                    FLAGS.batch_size, FLAGS.meteor, FLAGS.output, FLAGS.html)
  print(json.dumps({"step": result["step"], "split": result["split"],
                    "decode": result["decode"]} | result["metrics"]))


if __name__ == "__main__":
  cli.run(main, "capflax.evaluate")
