"""The training objectives: `config.train.objective` -> its loss, its config fields and, when it
needs one, the stage each batch passes on the host before the jitted update.

The one step factory (`capflax.step.make`) consults `OBJECTIVES`; training and the benchmark
build their step through it, and the config check reads the names and fields from here. A new
objective is its loss (a function of the teacher-forced logits and the batch, returning sums),
one entry below, and its config fields in configs/demo.py and docs/config.md.
"""

import dataclasses
from collections.abc import Callable

import ml_collections

from capflax import losses, scst


@dataclasses.dataclass(frozen=True)
class Loss:
  """An objective bound to its config: what the jitted update differentiates.

  fn: (logits, batch) -> (summed loss, count, sums); the step's loss is the summed loss over
  `count` (gradients too), `sums['tokens']` counts the target tokens (the tokens a run has
  seen) and every other sum is logged per target token.
  train_mode: whether the forward runs as training does (dropout, BatchNorm batch statistics
  updated) or as inference does (SCST: the very policy that sampled the captions).
  """
  fn: Callable
  train_mode: bool


def cross_entropy(label_smoothing: float = 0.0) -> Loss:
  """The token cross-entropy of the batch's reference captions (`config.train.objective='xe'`)."""
  def fn(logits, batch):
    total, count = losses.token_cross_entropy(logits, batch["tokens"][..., 1:], label_smoothing)
    return total, count, {"tokens": count}
  return Loss(fn, train_mode=True)


def self_critical() -> Loss:
  """The policy gradient of the batch's sampled captions, weighted by their advantages, which
  `scst.Stage` computed on the host (`config.train.objective='scst'`)."""
  def fn(logits, batch):
    total, captions, tokens, entropy = losses.policy_gradient(
        logits, batch["tokens"][..., 1:], batch["advantages"])
    return total, captions, {"tokens": tokens, "entropy": entropy}
  return Loss(fn, train_mode=False)


@dataclasses.dataclass(frozen=True)
class Objective:
  loss: Callable[[ml_collections.ConfigDict], Loss]
  # Config fields only this objective reads: with another objective they keep their defaults.
  fields: tuple[str, ...]
  # Captions of each image the update differentiates (for the training FLOPs).
  captions_per_image: Callable[[ml_collections.ConfigDict], int]
  # (config, model, mesh, train records, vocabulary) -> a stage (state, host-local batch) ->
  # (global batch for the update, host metrics); None: the batch goes to the update as read.
  host_stage: Callable | None = None


OBJECTIVES = {
    "xe": Objective(loss=lambda c: cross_entropy(c.train.label_smoothing),
                    fields=("train.label_smoothing",), captions_per_image=lambda c: (
                        c.data.group_size if c.data.captions_per_image == "group" else 1)),
    "scst": Objective(loss=lambda c: self_critical(), fields=scst.FIELDS,
                      captions_per_image=lambda c: c.scst.num_samples, host_stage=scst.Stage),
}
