"""A finished (or running) workdir, loaded for inference: config, vocabulary, weights.

`evaluate` and `predict` rebuild the model from `config.json`, read `vocab.json` and
restore the newest complete checkpoint, so they caption with exactly what training
produced. They only read: a training still writing to the workdir is left alone.
"""

import dataclasses
import sys
from typing import Any

import ml_collections
import numpy as np
from absl import logging
from etils import epath
from PIL import Image

from capflax import checkpoint, config_check, decode, run_files, sharding
from capflax import state as state_lib
from capflax.data import dataset, pipeline
from capflax.data.tokenizer import Vocabulary
from capflax.errors import WorkdirError

DECODE_FIELDS = ("method", "beam_size", "alpha", "max_len", "min_len", "no_repeat_ngram_size",
                 "ban_unk", "temperature", "top_k", "top_p")


@dataclasses.dataclass
class Run:
  config: ml_collections.ConfigDict
  vocab: Vocabulary
  variables: Any  # {'params', 'batch_stats'}, replicated over `mesh`
  step: int
  mesh: Any


def load(workdir: str, decode_overrides: dict | None = None) -> Run:
  """The workdir's config (with `config.decode` fields replaced), vocabulary and weights."""
  config = config_check.complete(run_files.load_config(workdir).to_dict())
  config.decode.update(decode_overrides or {})
  config_check.check(config)
  vocab = dataset.saved_vocabulary(workdir)
  if vocab is None:
    raise WorkdirError(f"{epath.Path(workdir) / dataset.VOCAB_FILE}: missing; the workdir has no "
                       f"saved vocabulary.")
  mngr = checkpoint.reader(workdir)  # Read-only: a training there is left alone.
  mesh = sharding.make_mesh()  # Data parallel: the weights replicated on every device.
  # The schedule's length changes values, not the state's structure: any will do here.
  spec = state_lib.make_spec(config, len(vocab), mesh, state_lib.Durations(1, 0))
  restored = checkpoint.restore_latest(mngr, workdir, spec.abstract, set_aside=False)
  if restored is None:
    raise WorkdirError(f"{workdir}/checkpoints: no complete checkpoint yet.")
  state = restored[0]
  print(f"{workdir}: using the checkpoint of step {int(state.step)}, the newest complete one "
        f"(of {len(mngr.all_steps())}).", file=sys.stderr)
  return Run(config, vocab, state.eval_variables, int(state.step), mesh)


def define_decode_flags(flags) -> None:
  """--method, --beam_size, ...: each replaces its `config.decode` field when given."""
  flags.DEFINE_enum("method", None, list(decode.METHODS), "decode.method")
  flags.DEFINE_integer("beam_size", None, "decode.beam_size (beam search width)", lower_bound=1)
  flags.DEFINE_float("alpha", None, "decode.alpha: GNMT length penalty exponent")
  flags.DEFINE_integer("max_len", None, "decode.max_len: tokens, EOS included (0: the longest)",
                       lower_bound=0)
  flags.DEFINE_integer("min_len", None, "decode.min_len: EOS banned before this many words",
                       lower_bound=0)
  flags.DEFINE_integer("no_repeat_ngram_size", None, "decode.no_repeat_ngram_size (0: off)",
                       lower_bound=0)
  flags.DEFINE_bool("ban_unk", None, "decode.ban_unk: never produce <unk>")
  flags.DEFINE_float("temperature", None, "decode.temperature (sampling)")
  flags.DEFINE_integer("top_k", None, "decode.top_k (sampling; 0: off)", lower_bound=0)
  flags.DEFINE_float("top_p", None, "decode.top_p (sampling nucleus; 1: off)")


def decode_overrides(flag_values) -> dict:
  """The decode flags that were given; --beam_size alone implies --method=beam."""
  given = {k: flag_values[k].value for k in DECODE_FIELDS if flag_values[k].value is not None}
  if "beam_size" in given and "method" not in given:
    given["method"] = "beam"
  return given


# What reading an unusable image raises: unreadable or truncated (OSError, ValueError),
# or more pixels than PIL's own bomb limit.
IMAGE_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


def read_image(source, image_size: int, max_pixels: int) -> tuple[np.ndarray, Image.Image]:
  """([s, s, 3] uint8 resized as the eval pipeline does, the RGB photo) from a path or a
  binary file; one of IMAGE_ERRORS if unusable."""
  with Image.open(source) as image:  # Reads the header only: the size is known before decoding.
    if image.width * image.height > max_pixels:
      raise OSError(f"{image.width}x{image.height} pixels exceeds --max_pixels={max_pixels}")
    photo = image.convert("RGB")
  return pipeline.resize(np.asarray(photo), image_size).numpy(), photo
