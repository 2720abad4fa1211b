"""`check(config)`: the whole config, checked once before any data is read or folder made.

Every command calls it first, so a typo or an impossible value costs one line, not a
traceback an hour into a run. It checks
  keys and types against the defaults every config starts from (configs/demo.py), with a
  "did you mean" for unknown keys;
  ranges (sizes and intervals > 0, fractions in [0, 1], image size a multiple of the
  patch size, width a multiple of the heads);
  names against the tables that define them (encoders in capflax.models, decode methods
  in capflax.decode, objectives in capflax.objectives, SCST baselines in capflax.scst,
  schedules in capflax.optim, layouts in capflax.data), so a new entry there is allowed
  here without an edit; the fields an objective owns keep their defaults under another.
"""

import difflib
import math

import ml_collections

from capflax import decode, evaluation, objectives, optim, scst
from capflax.data import dataset, pipeline, sources, tfds_source
from capflax.errors import ConfigError
from capflax.models import captioner, decoder, encoders, vit

# Dicts whose keys are the user's (split names), not fields: checked as one value.
OPEN_DICTS = ("data.split_fractions",)
DTYPES = ("float32", "bfloat16", "float16")

# key: (lowest, highest, whether the lowest itself is allowed). None: no bound.
_RANGES = {
    "data.synthetic_images": (0, None, True),
    "data.synthetic_image_size": (1, None, True),
    "data.image_size": (1, None, True),
    "data.max_len": (1, None, True),
    "data.min_count": (1, None, True),
    "data.group_size": (1, None, True),
    "data.train_fraction": (0, 1, False),
    "data.augment.crop_min_area": (0, 1, False),
    "data.augment.color_jitter": (0, 1, True),
    "model.encoder.width": (1, None, True),
    "model.encoder.depth": (1, None, True),
    "model.encoder.mlp_dim": (1, None, True),
    "model.encoder.num_heads": (1, None, True),
    "model.encoder.patch_size": (1, None, True),
    "model.encoder.num_classes": (0, None, True),
    "model.encoder.dropout": (0, 1, True),
    "model.decoder.width": (1, None, True),
    "model.decoder.depth": (1, None, True),
    "model.decoder.mlp_dim": (1, None, True),
    "model.decoder.num_heads": (1, None, True),
    "model.decoder.dropout": (0, 1, True),
    "optim.lr": (0, None, False),
    "optim.warmup_steps": (0, None, True),
    "optim.warmup_epochs": (0, None, True),
    "optim.end_lr_fraction": (0, 1, True),
    "optim.b1": (0, 1, True),
    "optim.b2": (0, 1, True),
    "optim.weight_decay": (0, None, True),
    "optim.grad_clip_norm": (0, None, True),
    "optim.encoder_lr_mult": (0, None, True),
    "optim.ema_decay": (0, 1, True),
    "train.batch_size": (1, None, True),
    "train.num_steps": (0, None, True),
    "train.num_epochs": (0, None, True),
    "train.grad_accum_steps": (1, None, True),
    "train.label_smoothing": (0, 1, True),
    "train.log_every": (1, None, True),
    "train.eval_every": (1, None, True),
    "train.checkpoint_every": (1, None, True),
    "train.keep_checkpoints": (1, None, True),
    "train.keep_every": (0, None, True),
    "train.profile_steps": (0, None, True),
    "train.profile_first_step": (0, None, True),
    "train.peak_flops_per_device": (0, None, True),
    "scst.num_samples": (1, None, True),
    "scst.bleu4_weight": (0, None, True),
    "mesh.fsdp_min_size": (0, None, True),
    "eval.batch_size": (1, None, True),
    "eval.max_val_images": (1, None, True),
    "eval.loss_batches": (1, None, True),
    "eval.num_samples": (0, None, True),
    "decode.beam_size": (1, None, True),
    "decode.alpha": (0, None, True),
    "decode.max_len": (0, None, True),
    "decode.min_len": (0, None, True),
    "decode.no_repeat_ngram_size": (0, None, True),
    "decode.temperature": (0, None, False),
    "decode.top_k": (0, None, True),
    "decode.top_p": (0, 1, False),
}


def _names() -> dict[str, tuple[str, ...]]:
  """key -> allowed values, read from the modules that define them."""
  return {
      "model.encoder.name": tuple(encoders.REGISTRY),
      "model.decoder.positions": tuple(decoder.POSITIONS),
      "model.dtype": DTYPES,
      "decode.method": tuple(decode.METHODS),
      "train.objective": tuple(objectives.OBJECTIVES),
      "scst.baseline": tuple(scst.BASELINES),
      "optim.schedule": tuple(optim.SCHEDULES),
      "data.captions_per_image": tuple(pipeline.CAPTIONS_PER_IMAGE),
      "data.on_bad_example": tuple(dataset.POLICIES),
  }


def defaults() -> ml_collections.ConfigDict:
  """The config every capflax config extends: the reference for keys and types."""
  from configs import demo  # The configs/ folder beside the package.
  return demo.get_config()


def flatten(config) -> dict:
  """{'train.batch_size': 64, ...}; OPEN_DICTS stay whole."""
  out = {}

  def walk(node, prefix):
    for key, value in node.items():
      name = f"{prefix}{key}"
      if isinstance(value, (dict, ml_collections.ConfigDict)) and name not in OPEN_DICTS:
        walk(value, name + ".")
      else:
        out[name] = value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value
  walk(config, "")
  return out


def complete(saved: dict) -> ml_collections.ConfigDict:
  """A saved config (config.json, run.json) with the fields added since it was written set
  to their defaults, so an older workdir still loads; nothing it holds is changed."""
  def merge(default: dict, values: dict, prefix: str) -> dict:
    out = dict(values)  # Unknown keys and wrong types stay, for check() to name.
    for key, value in default.items():
      name = f"{prefix}{key}"
      if key not in out:
        out[key] = value
      elif isinstance(value, dict) and isinstance(out[key], dict) and name not in OPEN_DICTS:
        out[key] = merge(value, out[key], name + ".")
    return out
  return ml_collections.ConfigDict(merge(defaults().to_dict(), dict(saved), ""))


def did_you_mean(key: str, known) -> str:
  """'; did you mean train.batch_size?' for the nearest known key, or ''."""
  known = list(known)
  close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
  if not close:  # A typo in the section: compare the last part among all sections.
    leaf = key.rsplit(".", 1)[-1]
    close = [k for k in known if k.rsplit(".", 1)[-1] == leaf][:1]
  return f"; did you mean {close[0]}?" if close else ""


def _type_name(value) -> str:
  return {bool: "a bool", int: "an int", float: "a number", str: "a string"}.get(
      type(value), "a list" if isinstance(value, (list, tuple)) else type(value).__name__)


def _type_ok(value, reference) -> bool:
  if reference is None:
    return True
  if isinstance(reference, bool):
    return isinstance(value, bool)
  if isinstance(reference, int):
    return isinstance(value, int) and not isinstance(value, bool)
  if isinstance(reference, float):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if isinstance(reference, (list, tuple)):
    return isinstance(value, (list, tuple))
  return isinstance(value, type(reference))


def check(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first bad key, its value and what it may be."""
  if not isinstance(config, (dict, ml_collections.ConfigDict)):
    raise ConfigError(f"the config is {type(config).__name__}, not a ConfigDict; does its "
                      f"get_config() return one?")
  reference = flatten(defaults())
  values = flatten(config)
  for key in values:
    if key not in reference:
      raise ConfigError(f"config.{key}: unknown key{did_you_mean(key, reference)}")
  for key, ref in reference.items():
    if key not in values:
      raise ConfigError(f"config.{key}: missing (every config has it; the default is {ref!r}).")
    if not _type_ok(values[key], ref):
      raise ConfigError(f"config.{key}={values[key]!r}: must be {_type_name(ref)}.")
  _check_ranges(values)
  for key, allowed in _names().items():
    if values[key] not in allowed:
      raise ConfigError(f"config.{key}={values[key]!r}: unknown; allowed: "
                        f"{', '.join(map(repr, allowed))}.")
  _check_objective(values, reference)
  _check_consistency(config, values)


def _check_objective(values: dict, reference: dict) -> None:
  """The fields other objectives own stay at their defaults (so a forgotten
  train.objective is caught); SCST's settings fit together."""
  chosen = values["train.objective"]
  for name, objective in objectives.OBJECTIVES.items():
    for key in objective.fields:
      if name != chosen and key not in objectives.OBJECTIVES[chosen].fields and (
          values[key] != reference[key]):
        raise ConfigError(f"config.{key}={values[key]!r} is a setting of "
                          f"train.objective={name!r}, but config.train.objective={chosen!r}.")
  if chosen != "scst":
    return
  if values["scst.baseline"] == "mean" and values["scst.num_samples"] < 2:
    raise ConfigError(f"config.scst.num_samples={values['scst.num_samples']}: the 'mean' "
                      f"baseline (config.scst.baseline) averages the image's other samples, so "
                      f"it needs >= 2.")
  if values["data.cache_features"]:
    raise ConfigError("config.data.cache_features=True: train.objective='scst' samples from "
                      "the images, not from stored encoder tokens; set it to False.")
  if not values["init_from_workdir"]:  # A policy gradient from random weights learns nothing.
    raise ConfigError("config.init_from_workdir is empty, but train.objective='scst' fine-tunes "
                      "a trained captioner on its own samples: pass "
                      "--config.init_from_workdir=DIR, a finished cross-entropy run's workdir.")


def _check_ranges(values: dict) -> None:
  for key, (low, high, low_ok) in _RANGES.items():
    v = values[key]
    if isinstance(v, float) and not math.isfinite(v):
      raise ConfigError(f"config.{key}={v!r}: must be a finite number.")
    bad = (low is not None and (v < low or (v == low and not low_ok))) or (
        high is not None and v > high)
    if bad:
      if high is None:
        want = f">= {low}" if low_ok else f"> {low}"
      else:
        want = f"in [{low}, {high}]" if low_ok else f"in ({low}, {high}]"
      raise ConfigError(f"config.{key}={v!r}: must be {want}.")
  fractions = values["data.split_fractions"]
  if not isinstance(fractions, dict) or not fractions or not all(
      isinstance(f, (int, float)) and 0 <= f <= 1 for f in fractions.values()) or not sum(
          fractions.values()) > 0:
    raise ConfigError(f"config.data.split_fractions={fractions!r}: must map split names to "
                      f"fractions in [0, 1], not all 0.")
  if not (values["train.num_steps"] > 0 or values["train.num_epochs"] > 0
          or values.get("train.flops_budget", 0) > 0):
    raise ConfigError("config.train.num_steps and config.train.num_epochs are both 0: set "
                      "one > 0.")


def _check_consistency(config, values: dict) -> None:
  """Settings valid alone but not together; the model and decoding as their builders see it."""
  layout = values["data.layout"]
  if layout and layout not in sources.LAYOUTS and not tfds_source.is_tfds(layout):
    raise ConfigError(f"config.data.layout={layout!r}: unknown; allowed: '' (detect), "
                      f"{', '.join(map(repr, sources.LAYOUTS))} or 'tfds:NAME'.")
  enc = config.model.encoder
  if enc.init_from and config.init_from_workdir:
    raise ConfigError(f"config.model.encoder.init_from={enc.init_from!r} and "
                      f"config.init_from_workdir={config.init_from_workdir!r}: both give the "
                      f"starting weights; set one.")
  if enc.pretrained and not enc.init_from and not config.init_from_workdir:
    raise ConfigError("config.model.encoder.init_from is empty, but this config fine-tunes a "
                      "pretrained encoder: pass --config.model.encoder.init_from=PATH (see "
                      "docs/encoders.md), or --config.model.encoder.pretrained=False to train "
                      "it from scratch.")
  for part in ("encoder", "decoder"):
    m = config.model[part]
    if not (part == "encoder" and (enc.name != "vit" or enc.variant)) and m.width % m.num_heads:
      raise ConfigError(f"config.model.{part}.width={m.width} is not divisible by "
                        f"config.model.{part}.num_heads={m.num_heads}.")
  if enc.name == "vit":
    try:
      patch = vit.parse_variant(enc.variant)["patch_size"] if enc.variant else enc.patch_size
    except ValueError as e:
      raise ConfigError(f"config.model.encoder.variant: {e}") from None
    if config.data.image_size % patch:
      raise ConfigError(f"config.data.image_size={config.data.image_size} is not a multiple of "
                        f"the ViT patch size {patch} (config.model.encoder."
                        f"{'variant' if enc.variant else 'patch_size'}).")
  t = config.train
  if t.batch_size % t.grad_accum_steps:
    raise ConfigError(f"config.train.batch_size={t.batch_size} is not divisible by "
                      f"config.train.grad_accum_steps={t.grad_accum_steps}.")
  try:
    captioner.build(config, vocab_size=8)  # Variants, scan, ...
    evaluation.decode_settings(config)
  except ValueError as e:
    raise ConfigError(f"config.{e}" if str(e).startswith(("model.", "decode.")) else str(e)) \
        from None

