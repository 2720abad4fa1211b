"""Greedy search on model-free Markov chains whose best paths are known by hand."""

import jax
import jax.numpy as jnp
import numpy as np

from capflax import decode
from capflax.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

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
