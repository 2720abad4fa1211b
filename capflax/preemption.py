"""Preemption: a SIGTERM (Cloud TPU's and most schedulers' notice) or a Ctrl-C (SIGINT)
ends training cleanly: the step in flight finishes, a checkpoint is saved, the run returns.

One process: a signal handler sets a flag the training loop polls each step; a second
Ctrl-C stops at once (KeyboardInterrupt; checkpoints already started still complete). Several
processes: JAX's preemption service (started by `jax.distributed.initialize`) turns
the notice into a sync point every process reaches at the same step, so they all save
the same step.
"""

import signal
import threading

import jax
from absl import logging


SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Notice:
  """`reached(step)`: stop after this step? Use as a context manager around the loop.

  `signal`: the name of the signal received ('SIGTERM', 'SIGINT'), None if none.
  """

  def __init__(self, mngr):
    self._mngr = mngr  # Its `reached_preemption` wraps JAX's sync point.
    self._multi = jax.process_count() > 1
    self.signal = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.signal == "SIGINT" and signum == signal.SIGINT:
      raise KeyboardInterrupt  # Twice: the user does not want to wait for the save.
    self.signal = signal.Signals(signum).name
    logging.warning("Received %s: saving a checkpoint after this step, then exiting%s.",
                    self.signal, " (Ctrl-C again: exit without saving)"
                    if signum == signal.SIGINT else "")

  def __enter__(self):
    if not self._multi and threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
    return self

  def __exit__(self, *exc):
    for s, previous in self._previous.items():
      signal.signal(s, previous)
    self._previous = {}

  def reached(self, step: int) -> bool:
    if self._multi:
      return self._mngr.reached_preemption(step)
    return self.signal is not None
