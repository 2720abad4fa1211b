"""Greedy, sampling and beam search on model-free Markov chains whose best captions are known
by hand, and cached against recomputed decoding on the real model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from capflax import decode
from capflax.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID

V = 8


def markov(successor: dict[int, int]):
  """Logits that put most mass on successor[prev]; the cache counts the calls."""
  table = np.full((V, V), -5.0, np.float32)
  for prev, nxt in successor.items():
    table[prev, nxt] = 0.0
  table = jnp.asarray(table)

  def tokens_to_logits(tokens, position, calls):
    return table[tokens], calls + 1  # [b, V]
  return tokens_to_logits


def test_follows_the_argmax_chain_and_pads_after_eos():
  fn = markov({BOS_ID: 5, 5: 6, 6: EOS_ID, EOS_ID: 7, 7: 7})
  out = jax.jit(lambda c: decode.greedy(fn, c, batch_size=2, max_len=6))(jnp.array(0))
  assert out.tolist() == [[5, 6, EOS_ID, PAD_ID, PAD_ID, PAD_ID]] * 2


def test_stops_early_when_every_sequence_has_ended():
  fn = markov({BOS_ID: 4, 4: EOS_ID})
  positions = []

  def recording(tokens, position, cache):
    jax.debug.callback(lambda p: positions.append(int(p)), position)
    return fn(tokens, position, cache)

  seq = decode.greedy(recording, jnp.array(0), batch_size=3, max_len=20)
  jax.effects_barrier()
  assert seq[:, :2].tolist() == [[4, EOS_ID]] * 3 and (seq[:, 2:] == PAD_ID).all()
  assert positions == [0, 1]  # Two model calls, not twenty.


def test_eos_at_the_first_step():
  out = decode.greedy(markov({BOS_ID: EOS_ID}), jnp.array(0), batch_size=1, max_len=4)
  assert out.tolist() == [[EOS_ID, PAD_ID, PAD_ID, PAD_ID]]


def test_no_eos_ever_returns_max_len_tokens():
  out = decode.greedy(markov({BOS_ID: 3, 3: 5, 5: 3}), jnp.array(0), batch_size=1, max_len=5)
  assert out.tolist() == [[3, 5, 3, 5, 3]]


def test_rows_decode_independently():
  """Row r's chain depends on its own tokens only; positions are passed in order."""
  def fn(tokens, position, seen):
    nxt = jnp.where(tokens == BOS_ID, jnp.array([4, 6]), jnp.where(tokens == 4, EOS_ID, 5))
    nxt = jnp.where(position >= 3, EOS_ID, nxt)
    return jax.nn.one_hot(nxt, V) * 10.0, seen.at[position].set(1)
  seq = decode.greedy(fn, jnp.zeros(8, jnp.int32), batch_size=2, max_len=8)
  assert seq.tolist() == [[4, EOS_ID, 0, 0, 0, 0, 0, 0], [6, 5, 5, EOS_ID, 0, 0, 0, 0]]


IMPOSSIBLE = -1e9


def chain(probs: dict[int, dict[int, float]]):
  """Log-probability logits of a first-order Markov chain; unlisted transitions impossible."""
  table = np.full((V, V), IMPOSSIBLE, np.float32)
  for prev, row in probs.items():
    for nxt, p in row.items():
      table[prev, nxt] = np.log(p)
  table = jnp.asarray(table)
  return lambda tokens, position, cache: (table[tokens], cache)  # [n, V]


# Whole-caption probabilities, by hand: [5, E] .4 * .9 = .36; [4, 6, E] .5 * .4 * 1 = .2;
# [4, E] .5 * .35 = .175; [E] .1; [4, 7, E] .5 * .25 * .4 = .05; [5, 6, E] .04; ...
# Greedy takes 4 (.5) then 6 (.4): [4, 6, E], which is not the best caption.
HAND = {BOS_ID: {4: .5, 5: .4, EOS_ID: .1}, 4: {6: .4, 7: .25, EOS_ID: .35},
        5: {EOS_ID: .9, 6: .1}, 6: {EOS_ID: 1.0}, 7: {7: .6, EOS_ID: .4}}


def beam(fn, k, max_len=6, alpha=0.0, batch_size=1, rules=decode.Constraints()):
  search = jax.jit(lambda c: decode.beam_search(fn, c, batch_size, max_len, k, alpha, rules))
  tokens, scores = search(jnp.array(0))
  return tokens.tolist(), np.asarray(scores)


def test_beam_search_finds_the_best_captions_where_greedy_does_not():
  greedy = decode.greedy(chain(HAND), jnp.array(0), batch_size=1, max_len=6)
  assert greedy.tolist() == [[4, 6, EOS_ID, 0, 0, 0]]
  tokens, scores = beam(chain(HAND), k=3, batch_size=2)
  assert tokens == [[[5, EOS_ID, 0, 0, 0, 0], [4, 6, EOS_ID, 0, 0, 0], [4, EOS_ID, 0, 0, 0, 0]]] * 2
  np.testing.assert_allclose(scores, np.log([[.36, .2, .175]] * 2), rtol=1e-5)
  tokens, _ = beam(chain(HAND), k=2)
  assert tokens == [[[5, EOS_ID, 0, 0, 0, 0], [4, 6, EOS_ID, 0, 0, 0]]]


def test_beam_search_stops_once_no_live_beam_can_win():
  """K=2 on HAND: after step 3 the ended [5, E] .36 and [4, 6, E] .2 beat the best live
  beam, [4, 7, 7] .075, which can only lose probability: 3 model calls, not 20."""
  positions = []

  def recording(tokens, position, cache):
    jax.debug.callback(lambda p: positions.append(int(p)), position)
    return chain(HAND)(tokens, position, cache)

  tokens, _ = beam(recording, k=2, max_len=20)
  jax.effects_barrier()
  assert tokens[0][0][:2] == [5, EOS_ID] and positions == [0, 1, 2]


def test_beam_size_one_is_greedy_on_random_chains():
  rng = np.random.default_rng(0)
  for _ in range(5):
    table = jnp.asarray(rng.normal(size=(V, V)).astype(np.float32) * 2)
    fn = lambda tokens, position, cache: (table[tokens], cache)
    tokens, _ = beam(fn, k=1, max_len=7)
    greedy = decode.greedy(fn, jnp.array(0), batch_size=1, max_len=7)
    assert tokens[0] == greedy.tolist()


def test_length_penalty_changes_the_winner():
  # [4, E]: p .52, 2 tokens; [5, 6, 7, E]: p .48, 4 tokens. log .52 / (7/6) < log .48 / (9/6).
  fn = chain({BOS_ID: {4: .52, 5: .48}, 4: {EOS_ID: 1.0}, 5: {6: 1.0}, 6: {7: 1.0},
              7: {EOS_ID: 1.0}})
  plain, _ = beam(fn, k=2, max_len=8, alpha=0.0)
  assert plain[0][0][:2] == [4, EOS_ID]
  penalised, scores = beam(fn, k=2, max_len=8, alpha=1.0)
  assert penalised[0][0][:4] == [5, 6, 7, EOS_ID]
  np.testing.assert_allclose(scores[0], [np.log(.48) / 1.5, np.log(.52) / (7 / 6)], rtol=1e-5)


def test_beam_eos_at_the_first_step():
  tokens, scores = beam(chain({BOS_ID: {EOS_ID: .9, 4: .1}, 4: {EOS_ID: 1.0}}), k=2, max_len=4)
  assert tokens == [[[EOS_ID, 0, 0, 0], [4, EOS_ID, 0, 0]]]
  np.testing.assert_allclose(scores, np.log([[.9, .1]]), rtol=1e-5)


def test_beam_without_any_eos_returns_the_best_live_beams():
  fn = chain({BOS_ID: {4: .7, 5: .3}, 4: {4: .8, 5: .2}, 5: {5: 1.0}})
  tokens, scores = beam(fn, k=2, max_len=3)
  assert tokens == [[[4, 4, 4], [5, 5, 5]]]  # .7 * .8 * .8 = .448 > .3 > .7 * .8 * .2
  np.testing.assert_allclose(scores, np.log([[.448, .3]]), rtol=1e-5)


def test_min_length_bans_eos_early():
  fn = chain({BOS_ID: {EOS_ID: .6, 4: .4}, 4: {EOS_ID: .7, 5: .3}, 5: {EOS_ID: 1.0}})
  rules = decode.Constraints(min_len=2)
  greedy = decode.greedy(fn, jnp.array(0), batch_size=1, max_len=4, rules=rules)
  assert greedy.tolist() == [[4, 5, EOS_ID, 0]]
  tokens, _ = beam(fn, k=2, max_len=4, rules=rules)
  assert tokens[0][0] == [4, 5, EOS_ID, 0]


def test_no_repeat_ngram_blocks_a_repeated_bigram():
  # Unconstrained greedy: 4 5 4 5 4 5 ...; with bigrams blocked, "4 5" cannot recur, so
  # after 4 5 4 the runner-up 6 follows, then 6 -> E.
  fn = chain({BOS_ID: {4: 1.0}, 4: {5: .6, 6: .4}, 5: {4: .9, EOS_ID: .1}, 6: {EOS_ID: 1.0}})
  rules = decode.Constraints(no_repeat_ngram_size=2)
  greedy = decode.greedy(fn, jnp.array(0), batch_size=1, max_len=6, rules=rules)
  assert greedy.tolist() == [[4, 5, 4, 6, EOS_ID, 0]]
  tokens, _ = beam(fn, k=1, max_len=6, rules=rules)
  assert tokens[0][0] == [4, 5, 4, 6, EOS_ID, 0]
  unigram = decode.Constraints(no_repeat_ngram_size=1)
  assert decode.greedy(fn, jnp.array(0), 1, 6, unigram).tolist() == [[4, 5, EOS_ID, 0, 0, 0]]


def test_banned_tokens_are_never_produced():
  fn = chain({BOS_ID: {UNK_ID: .8, 4: .2}, UNK_ID: {EOS_ID: 1.0}, 4: {UNK_ID: .9, EOS_ID: .1}})
  rules = decode.Constraints(banned=(UNK_ID,))
  assert decode.greedy(fn, jnp.array(0), 1, 4, rules).tolist() == [[4, EOS_ID, 0, 0]]
  tokens, _ = beam(fn, k=2, max_len=4, rules=rules)
  assert all(UNK_ID not in t for t in tokens[0])
  sampled = decode.sample(fn, jnp.array(0), 64, 4, jax.random.PRNGKey(0), rules=rules)
  assert (sampled != UNK_ID).all()


def test_sampling_with_top_k_one_is_greedy():
  rng = np.random.default_rng(1)
  table = jnp.asarray(rng.normal(size=(V, V)).astype(np.float32))
  fn = lambda tokens, position, cache: (table[tokens], cache)
  greedy = decode.greedy(fn, jnp.array(0), batch_size=4, max_len=6)
  sampled = decode.sample(fn, jnp.array(0), 4, 6, jax.random.PRNGKey(3), temperature=2.0, top_k=1)
  assert sampled.tolist() == greedy.tolist()


def first_token_frequencies(logits, n=20_000, **kwargs):
  table = jnp.zeros((V, V)).at[BOS_ID].set(logits).at[:, EOS_ID].add(
      jnp.where(jnp.arange(V) == BOS_ID, 0.0, 50.0))  # Any word is followed by EOS.
  fn = lambda tokens, position, cache: (table[tokens], cache)
  first = decode.sample(fn, jnp.array(0), n, 2, jax.random.PRNGKey(7), **kwargs)[:, 0]
  return np.bincount(np.asarray(first), minlength=V) / n


def test_sampling_frequencies_match_the_softmax():
  logits = jnp.log(jnp.array([1e-9, 1e-9, 1e-9, 1e-9, .4, .3, .2, .1]))
  # 3 standard errors of a binomial frequency at n = 20,000 is at most 0.011.
  np.testing.assert_allclose(first_token_frequencies(logits)[4:], [.4, .3, .2, .1], atol=0.011)
  hot = jax.nn.softmax(logits / 0.5)[4:]
  np.testing.assert_allclose(first_token_frequencies(logits, temperature=0.5)[4:], hot, atol=0.011)
  np.testing.assert_allclose(first_token_frequencies(logits, top_k=2)[4:],
                             [.4 / .7, .3 / .7, 0, 0], atol=0.011)
  # Nucleus .75: .4 + .3 < .75, so .2 joins; .1 is cut.
  np.testing.assert_allclose(first_token_frequencies(logits, top_p=.75)[4:],
                             [.4 / .9, .3 / .9, .2 / .9, 0], atol=0.011)


@pytest.mark.parametrize("method", ["greedy", "beam", "sample"])
def test_cached_decoding_equals_recomputing_the_prefix_on_the_real_model(method):
  from capflax import evaluation, sharding
  from capflax.models import captioner
  from configs import demo
  config = demo.get_config("tiny")
  config.decode.update(method=method, beam_size=3, no_repeat_ngram_size=2)
  vocab_size = 24
  s = config.data.image_size
  images = np.random.default_rng(0).integers(0, 256, (4, s, s, 3), np.uint8)
  params = captioner.build(config, vocab_size).init(
      jax.random.PRNGKey(1), images[:1], jnp.zeros((1, 4), jnp.int32))["params"]
  params = jax.tree.map(lambda p: p * 4, params)  # Sharper logits: varied, decisive captions.
  mesh = sharding.make_mesh()
  runs = [evaluation.make_generate(config, vocab_size, mesh, num_return=2 - (method == "greedy"),
                                   cached=cached)({"params": params}, images, jax.random.PRNGKey(2))
          for cached in (True, False)]
  assert runs[0].shape == (4, 2 - (method == "greedy"), config.data.max_len + 1)
  assert len({tuple(t) for t in runs[0].reshape(-1, runs[0].shape[-1]).tolist()}) > 1
  np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("field, value, message", [
    ("method", "nucleus", "decode.method must be 'greedy', 'beam' or 'sample', got 'nucleus'"),
    ("max_len", 14, r"decode.max_len must be in 1..13 \(data.max_len \+ 1\), got 14"),
    ("beam_size", 0, "decode.beam_size must be >= 1, got 0")])
def test_decode_settings_are_checked(field, value, message):
  from capflax import evaluation
  from configs import demo
  config = demo.get_config("tiny")
  config.decode[field] = value
  with pytest.raises(ValueError, match=message):
    evaluation.decode_settings(config)
  config.decode[field] = demo.get_config("tiny").decode[field]
  assert evaluation.decode_settings(config)["max_len"] == config.data.max_len + 1
