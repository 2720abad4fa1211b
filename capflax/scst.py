"""Self-critical sequence training (Rennie et al., 2017): the host side of an SCST step.

Each step samples `scst.num_samples` captions per image with the jitted sampler (softmax at
temperature 1, no constraints: the policy whose log-probabilities the update differentiates),
rewards every caption on the host (`capflax.reward`), and hands the update the samples with
their advantages, reward - baseline. The baseline is the mean reward of the image's other
samples ('mean', ruotianluo's new_self_critical) or its greedy caption's ('greedy', Rennie
et al.'s). The greedy captions are decoded for the 'greedy' baseline, and otherwise only on
the steps that log (`train.log_every`), for their CIDEr-D. Sampling draws from
`fold_in(state.rng, step)`, so a resumed run samples what an uninterrupted one would.
"""

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from capflax import evaluation, reward, sharding
from capflax.data.tokenizer import BOS_ID, PAD_ID

FIELDS = ("scst.num_samples", "scst.baseline", "scst.bleu4_weight", "scst.append_eos")
_SAMPLE_STREAM = 1  # Sampling's key: fold_in(fold_in(state.rng, step), this).


def mean_of_others(rewards: np.ndarray, greedy: np.ndarray) -> np.ndarray:
  """[b, S] -> each sample's baseline, the mean reward of its image's other S - 1 samples."""
  del greedy
  return (rewards.sum(1, keepdims=True) - rewards) / (rewards.shape[1] - 1)


def greedy_reward(rewards: np.ndarray, greedy: np.ndarray) -> np.ndarray:
  """[b, S], [b] -> each sample's baseline, its image's greedy caption's reward."""
  return np.broadcast_to(greedy[:, None], rewards.shape)


BASELINES = {"mean": mean_of_others, "greedy": greedy_reward}  # config.scst.baseline


def _search(config: ml_collections.ConfigDict, method: str, vocab_size: int, mesh,
            num_return: int):
  """The model's own search: no length, repetition or <unk> rule, temperature 1."""
  config = config.copy_and_resolve_references()
  config.decode.update(method=method, max_len=0, min_len=0, no_repeat_ngram_size=0,
                       ban_unk=False, temperature=1.0, top_k=0, top_p=1.0)
  return evaluation.make_generate(config, vocab_size, mesh, num_return=num_return)


class Stage:
  """(state, host-local batch {'image', 'image_index'}) -> (global batch {'image', 'tokens'
  [b, S, T + 1], 'advantages' [b, S]}, host metrics). Built once per run."""

  def __init__(self, config: ml_collections.ConfigDict, model, mesh, records, vocab):
    del model  # The searches build their cached-decoding twin.
    s = config.scst
    self.mesh, self.num_samples, self.baseline = mesh, s.num_samples, BASELINES[s.baseline]
    self.append_eos, self.log_every = s.append_eos, config.train.log_every
    self.reward = reward.Reward.from_records(records, vocab, config.data.max_len, s.append_eos,
                                             s.bleu4_weight)
    self.sample = _search(config, "sample", len(vocab), mesh, s.num_samples)
    self.greedy = _search(config, "greedy", len(vocab), mesh, 1)

  def __call__(self, state, local: dict) -> tuple[dict, dict]:
    images = sharding.global_batch({"image": local["image"]}, self.mesh)["image"]
    key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), _SAMPLE_STREAM)
    logs = (int(state.step) + 1) % self.log_every == 0  # The step this batch trains logs.
    with_greedy = logs or self.baseline is greedy_reward
    outputs = [self.sample(state.variables, images, key)]  # [B, S, T]: the policy, not its EMA
    if with_greedy:
      outputs.append(self.greedy(state.variables, images, key)[:, 0])  # [B, T]
    # Every host scores the whole global batch: the same metrics everywhere.
    index, sampled, *greedy = (np.asarray(multihost_utils.process_allgather(x, tiled=True))
                               for x in (local["image_index"], *outputs))
    big_b, s, t = sampled.shape
    flat = np.concatenate([sampled.reshape(big_b * s, t), *greedy])  # [B * S (+ B), T]
    rewards, cider = self.reward(np.concatenate([np.repeat(index, s)] + [index] * len(greedy)),
                                 reward.caption_words(flat, self.append_eos))
    sample_reward = rewards[:big_b * s].reshape(big_b, s)  # [B, S]
    baseline = self.baseline(sample_reward, rewards[big_b * s:])  # [B, S]

    words, eos = (x[:big_b * s].reshape(big_b, s) for x in reward.caption_lengths(flat))
    # The tokens up to and including EOS count; PAD after (and from a sampled PAD on).
    counted = (np.arange(t) < (words + eos)[..., None])  # [B, S, T]
    tokens = np.concatenate([np.full((big_b, s, 1), BOS_ID, sampled.dtype),
                             np.where(counted, sampled, PAD_ID)], -1)  # [B, S, 1 + T]
    rows = slice(len(local["image"]) * jax.process_index(),
                 len(local["image"]) * (jax.process_index() + 1))
    batch = sharding.global_batch(
        {"image": local["image"], "tokens": tokens[rows].astype(np.int32),
         "advantages": (sample_reward - baseline)[rows].astype(np.float32)}, self.mesh)
    metrics = {"reward": float(sample_reward.mean()), "baseline": float(baseline.mean()),
               "sample_cider_d": float(cider[:big_b * s].mean()),
               "sample_length": float(words.mean()), "no_eos": float(1.0 - eos.mean())}
    if greedy:
      metrics["greedy_cider_d"] = float(cider[big_b * s:].mean())
    return batch, metrics
