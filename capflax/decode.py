"""Model-agnostic search over a token-at-a-time model with a cache: greedy, sampling, beam.

A model enters only through `tokens_to_logits(tokens [n], position, cache) -> (logits
[n, vocab], cache)`, so the searches are testable with hand-built toy models. Every
search is one `lax.while_loop`; outputs are [batch, max_len] tokens ending in EOS (kept)
and PAD after it. `METHODS` names each search (`config.decode.method`) and `search` runs
the one a `Search` names, so a new search is its function and one entry there.

Beam search follows t5x `decoding.py`: 2K candidates per step so that K stay live after
some end, GNMT length penalty on ended hypotheses, early stop once no live beam can beat
the ended ones, and the cache reordered by beam at every step. As in fairseq, a
hypothesis ends only if its EOS ranks within the top K of the step.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from capflax.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

TokensToLogits = Callable[[jax.Array, jax.Array, Any], tuple[jax.Array, Any]]
NEG_INF = -1.0e7  # Finite, so sums of banned scores stay ordered and never become NaN.


@dataclasses.dataclass(frozen=True)
class Constraints:
  """Token rules shared by every search.

  min_len: EOS is banned until this many words are out. no_repeat_ngram_size: a token that
  would repeat an n-gram already in the sequence (BOS included) is banned (0: off).
  banned: token ids never produced (e.g. UNK).
  """
  min_len: int = 0
  no_repeat_ngram_size: int = 0
  banned: tuple[int, ...] = ()


def constrain(logits: jax.Array, seq: jax.Array, i: jax.Array, rules: Constraints) -> jax.Array:
  """Sets banned next-token logits to NEG_INF.

  logits: [n, V] for the token at position i + 1 of seq: [n, 1 + T] (BOS at 0, i tokens out).
  """
  n, vocab = logits.shape
  ban = jnp.zeros((n, vocab), bool)  # [n, V]
  if rules.banned:
    ban = ban.at[:, jnp.asarray(rules.banned)].set(True)
  if rules.min_len:
    ban = ban.at[:, EOS_ID].set(ban[:, EOS_ID] | (i < rules.min_len))
  g = rules.no_repeat_ngram_size
  if g:
    length = seq.shape[1]
    starts = jnp.arange(length - g + 1)  # [J] first position of each earlier n-gram
    # The g-1 newest tokens, seq[i-g+2 .. i]; only meaningful once i >= g - 2.
    tail = jnp.take(seq, jnp.clip(i - g + 2 + jnp.arange(g - 1), 0, length - 1), axis=1)  # [n, g-1]
    match = (starts + g - 1 <= i)[None] & (i >= g - 2)  # [1, J] n-gram written, tail exists
    for k in range(g - 1):
      match = match & (seq[:, k:k + len(starts)] == tail[:, k:k + 1])  # [n, J]
    follower = seq[:, g - 1:]  # [n, J] the token completing each n-gram
    rows = jnp.broadcast_to(jnp.arange(n)[:, None], follower.shape)
    ban = ban.at[rows, follower].max(match)
  return jnp.where(ban, NEG_INF, logits)


def _token_by_token(choose, tokens_to_logits, cache, batch_size, max_len, rules):
  """Shared loop of greedy and sampling: `choose(logits [b, V], i) -> tokens [b]`."""
  seq = jnp.full((batch_size, max_len + 1), PAD_ID, jnp.int32).at[:, 0].set(BOS_ID)  # [b, 1 + T]
  done = jnp.zeros((batch_size,), bool)  # [b]

  def cond(state):
    i, _, _, done = state
    return (i < max_len) & ~jnp.all(done)

  def body(state):
    i, seq, cache, done = state
    logits, cache = tokens_to_logits(seq[:, i], i, cache)  # [b, V]
    logits = constrain(logits.astype(jnp.float32), seq, i, rules)
    token = jnp.where(done, PAD_ID, choose(logits, i).astype(jnp.int32))  # [b]
    seq = jax.lax.dynamic_update_slice_in_dim(seq, token[:, None], i + 1, axis=1)
    return i + 1, seq, cache, done | (token == EOS_ID)

  _, seq, _, _ = jax.lax.while_loop(cond, body, (jnp.array(0), seq, cache, done))
  return seq[:, 1:]  # [b, T]


def greedy(tokens_to_logits: TokensToLogits, cache: Any, batch_size: int, max_len: int,
           rules: Constraints = Constraints()) -> jax.Array:
  """Argmax decoding: [b, max_len] tokens; stops as soon as every sequence has ended."""
  return _token_by_token(lambda logits, i: jnp.argmax(logits, -1), tokens_to_logits, cache,
                         batch_size, max_len, rules)


def sample(tokens_to_logits: TokensToLogits, cache: Any, batch_size: int, max_len: int,
           rng: jax.Array, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
           rules: Constraints = Constraints()) -> jax.Array:
  """Ancestral sampling from softmax(logits / temperature), optionally cut to the top k
  tokens and/or the smallest set whose probability reaches top_p (nucleus): [b, max_len].

  `temperature` may be a traced scalar (and beam search's `alpha` too), so that one
  compiled search serves every value."""
  if isinstance(temperature, (int, float)) and temperature <= 0:  # A traced one: the caller's.
    raise ValueError(f"decode.temperature must be > 0, got {temperature}.")

  def choose(logits, i):
    logits = logits / temperature  # [b, V]
    if top_k:
      kth = jax.lax.top_k(logits, top_k)[0][:, -1:]  # [b, 1]
      logits = jnp.where(logits < kth, NEG_INF, logits)
    if top_p < 1.0:
      order = jnp.argsort(-logits, axis=-1)  # [b, V]
      sorted_logits = jnp.take_along_axis(logits, order, -1)
      before = jnp.cumsum(jax.nn.softmax(sorted_logits), -1) - jax.nn.softmax(sorted_logits)
      cut = jnp.take_along_axis(before >= top_p, jnp.argsort(order, -1), -1)  # [b, V]
      logits = jnp.where(cut, NEG_INF, logits)
    return jax.random.categorical(jax.random.fold_in(rng, i), logits)

  return _token_by_token(choose, tokens_to_logits, cache, batch_size, max_len, rules)


def length_penalty(length, alpha: float):
  """GNMT (Wu et al., 2016): ((5 + length) / 6) ** alpha; length counts EOS."""
  return ((5.0 + length) / 6.0) ** alpha


def _gather_beams(x: jax.Array, beam: jax.Array) -> jax.Array:
  """x: [b * K, ...] (or a scalar, left alone); beam: [b, K'] -> [b * K', ...].

  Indices stay within each batch row, so a batch sharded over devices stays local.
  """
  if x.ndim == 0:
    return x
  b, k = beam.shape
  rows = x.reshape((b, -1) + x.shape[1:])  # [b, K, ...]
  idx = beam.reshape((b, k) + (1,) * (x.ndim - 1))
  return jnp.take_along_axis(rows, idx, axis=1).reshape((b * k,) + x.shape[1:])


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class _BeamState:
  i: jax.Array  # Words out so far.
  live_seq: jax.Array  # [b, K, 1 + T]
  live_logp: jax.Array  # [b, K] sum of log-probabilities, best first
  done_seq: jax.Array  # [b, K, 1 + T]
  done_score: jax.Array  # [b, K] length-penalised, best first
  done_flag: jax.Array  # [b, K]
  cache: Any  # Leaves [b * K, ...]


def beam_search(tokens_to_logits: TokensToLogits, cache: Any, batch_size: int, max_len: int,
                beam_size: int, alpha: float = 0.6,
                rules: Constraints = Constraints()) -> tuple[jax.Array, jax.Array]:
  """K-best hypotheses: (tokens [b, K, max_len], scores [b, K]), best first.

  `cache` holds batch-b leaves (batch leading, scalars allowed); they are repeated per beam.
  A score is log P / length_penalty. Hypotheses that ended with EOS rank first; when fewer
  than K ended (none at all, say), the best live beams fill the rest, scored as if they
  ended at max_len, so the result is never empty.
  """
  b, k = batch_size, beam_size
  seq0 = jnp.full((b, k, max_len + 1), PAD_ID, jnp.int32).at[:, :, 0].set(BOS_ID)
  state = _BeamState(
      i=jnp.array(0),
      live_seq=seq0,
      live_logp=jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1)), (b, 1)),  # Only beam 0 starts.
      done_seq=seq0,
      done_score=jnp.full((b, k), NEG_INF),
      done_flag=jnp.zeros((b, k), bool),
      cache=jax.tree.map(lambda x: x if x.ndim == 0 else jnp.repeat(x, k, axis=0), cache))
  best_penalty = length_penalty(max_len, alpha)  # Largest penalty: the best a live beam can get.

  def cond(s: _BeamState):
    best_live = s.live_logp[:, 0] / best_penalty  # [b]
    worst_done = jnp.where(s.done_flag[:, -1], s.done_score[:, -1], NEG_INF)  # [b]
    return (s.i < max_len) & ~jnp.all(worst_done > best_live)

  def body(s: _BeamState):
    flat_seq = s.live_seq.reshape(b * k, -1)  # [b*K, 1 + T]
    logits, cache = tokens_to_logits(flat_seq[:, s.i], s.i, s.cache)  # [b*K, V]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    logp = constrain(logp, flat_seq, s.i, rules).reshape(b, k, -1)  # [b, K, V]
    vocab = logp.shape[-1]
    total = (s.live_logp[:, :, None] + logp).reshape(b, k * vocab)  # [b, K*V]
    cand_logp, cand = jax.lax.top_k(total, 2 * k)  # [b, 2K]
    cand_beam, cand_token = cand // vocab, cand % vocab  # [b, 2K]
    cand_seq = jnp.take_along_axis(s.live_seq, cand_beam[:, :, None], axis=1)  # [b, 2K, 1 + T]
    cand_seq = cand_seq.at[:, :, s.i + 1].set(cand_token)
    ended = cand_token == EOS_ID  # [b, 2K]
    # Only the top K are in the beam: an EOS ranked below them ends nothing (so K=1 is greedy).
    in_beam = (jnp.arange(2 * k) < k)[None] & (cand_logp > NEG_INF / 2)  # [b, 2K]

    # Live: the best K candidates that did not end.
    live_logp, pick = jax.lax.top_k(jnp.where(ended, NEG_INF, cand_logp), k)  # [b, K]
    live_seq = jnp.take_along_axis(cand_seq, pick[:, :, None], axis=1)
    cache = jax.tree.map(lambda x: _gather_beams(x, jnp.take_along_axis(cand_beam, pick, 1)),
                         cache)

    # Ended: merge the new EOS candidates into the K best so far.
    score = cand_logp / length_penalty(s.i + 1, alpha)  # [b, 2K]
    score = jnp.where(ended & in_beam, score, NEG_INF)
    all_score = jnp.concatenate([s.done_score, score], 1)  # [b, 3K]
    all_flag = jnp.concatenate([s.done_flag, score > NEG_INF], 1)
    all_seq = jnp.concatenate([s.done_seq, cand_seq], 1)  # [b, 3K, 1 + T]
    done_score, pick = jax.lax.top_k(all_score, k)  # [b, K]
    return _BeamState(
        i=s.i + 1, live_seq=live_seq, live_logp=live_logp,
        done_seq=jnp.take_along_axis(all_seq, pick[:, :, None], axis=1),
        done_score=done_score, done_flag=jnp.take_along_axis(all_flag, pick, 1), cache=cache)

  s = jax.lax.while_loop(cond, body, state)
  # Ended hypotheses first (sorted), then live ones padding the list to K.
  num_done = jnp.sum(s.done_flag, axis=1, keepdims=True)  # [b, 1]
  slot = jnp.arange(k)[None]  # [1, K]
  pick = jnp.where(slot < num_done, slot, k + slot - num_done)  # [b, K] into [done, live]
  live_score = s.live_logp / length_penalty(s.i, alpha)
  seqs = jnp.take_along_axis(jnp.concatenate([s.done_seq, s.live_seq], 1), pick[:, :, None], 1)
  scores = jnp.take_along_axis(jnp.concatenate([s.done_score, live_score], 1), pick, 1)
  return seqs[:, :, 1:], scores  # [b, K, T], [b, K]


@dataclasses.dataclass(frozen=True)
class Search:
  """A search as `config.decode` fixes it; the length penalty and the temperature are
  arguments of `search` instead, so that they may be traced (one compile for every value)."""
  method: str  # A key of METHODS.
  max_len: int  # Tokens out, EOS included.
  beam_size: int = 4
  top_k: int = 0
  top_p: float = 1.0
  rules: Constraints = Constraints()


def _greedy_rows(s, tokens_to_logits, cache, batch_size, num_return, rng, alpha, temperature):
  return greedy(tokens_to_logits, cache, batch_size, s.max_len, s.rules)[:, None]  # [b, 1, T]


def _beam_rows(s, tokens_to_logits, cache, batch_size, num_return, rng, alpha, temperature):
  tokens, _ = beam_search(tokens_to_logits, cache, batch_size, s.max_len, s.beam_size, alpha,
                          s.rules)  # [b, K, T]
  return tokens[:, :num_return]  # [b, R, T]


def _sample_rows(s, tokens_to_logits, cache, batch_size, num_return, rng, alpha, temperature):
  many = jax.tree.map(lambda x: x if x.ndim == 0 else jnp.repeat(x, num_return, 0), cache)
  tokens = sample(tokens_to_logits, many, batch_size * num_return, s.max_len, rng, temperature,
                  s.top_k, s.top_p, s.rules)  # [b * R, T], each image's R rows together
  return tokens.reshape(batch_size, num_return, s.max_len)  # [b, R, T]


# config.decode.method -> (search, tokens_to_logits, cache, batch_size, num_return, rng, alpha,
# temperature) -> tokens [b, num_return, max_len].
METHODS = {"greedy": _greedy_rows, "beam": _beam_rows, "sample": _sample_rows}


def search(s: Search, tokens_to_logits: TokensToLogits, cache: Any, batch_size: int,
           num_return: int, rng: jax.Array, alpha=0.6, temperature=1.0) -> jax.Array:
  """`num_return` captions per image by the search `s` names: tokens [b, num_return, max_len]
  (greedy returns one; beam search its best, best first; sampling independent draws)."""
  return METHODS[s.method](s, tokens_to_logits, cache, batch_size, num_return, rng, alpha,
                           temperature)
