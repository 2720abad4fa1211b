"""Preemption: a SIGTERM (Cloud TPU's and most schedulers' notice) ends training cleanly.

One process: a signal handler sets a flag the training loop polls each step. Several
processes: JAX's preemption service (started by `jax.distributed.initialize`) turns
the notice into a sync point every process reaches at the same step, so they all save
the same step.
"""

import signal
import threading

import jax
from absl import logging


class Notice:
  """`reached(step)`: stop after this step? Use as a context manager around the loop."""

  def __init__(self, mngr):
    self._mngr = mngr  # Its `reached_preemption` wraps JAX's sync point.
    self._multi = jax.process_count() > 1
    self._signalled = False
    self._previous = None

  def _handle(self, signum, frame):
    del frame
    self._signalled = True
    logging.warning("Received signal %d: saving a checkpoint after this step, then exiting.",
                    signum)

  def __enter__(self):
    if not self._multi and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def reached(self, step: int) -> bool:
    if self._multi:
      return self._mngr.reached_preemption(step)
    return self._signalled
