"""One training per workdir: `WORKDIR/lock`, held with `flock` for as long as training runs.

The kernel releases a `flock` when its process dies, however it dies (kill -9 included),
so a lock left by a dead run is simply taken over; the file names the holder (host, pid,
start time) for the message a second run stops with. Only process 0 of a multi-host run
locks. A bucket (`gs://...`) has no locks: there the lock file only records the holder.
Inference commands never lock: they read a workdir, whoever trains in it.
"""

import contextlib
import datetime
import fcntl
import json
import os
import socket

from absl import logging

from capflax.errors import WorkdirError

LOCK = "lock"


def prepare(workdir: str) -> None:
  """Makes `workdir` (and parents); a file in its place or an unwritable one is one line."""
  if "://" in workdir:
    return
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f"--workdir={workdir} is a file, not a folder; give a folder.")
  os.makedirs(workdir, exist_ok=True)
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise WorkdirError(f"--workdir={workdir}: not writable by this user.")


def _holder() -> dict:
  return {"host": socket.gethostname(), "pid": os.getpid(),
          "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


@contextlib.contextmanager
def hold(workdir: str, lead: bool = True):
  """Holds WORKDIR/lock for the body; WorkdirError at once when another process holds it."""
  if not lead or "://" in workdir:
    yield
    return
  path = os.path.join(workdir, LOCK)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise WorkdirError(f"{workdir} is in use by another training ({_describe(fd)}); wait for "
                         f"it to end, or train in another --workdir.") from None
    previous = _read(fd)
    if previous.get("pid"):
      logging.info("Taking over the lock of %s, which no longer runs.", _format(previous))
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(_holder()).encode(), 0)
    try:
      yield
    finally:
      os.ftruncate(fd, 0)  # A clean end: nobody to take over from.
  finally:
    os.close(fd)  # Releases the flock (so does the kernel when a process dies).


def _read(fd: int) -> dict:
  try:
    return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
  except (ValueError, UnicodeDecodeError):
    return {}


def _format(holder: dict) -> str:
  return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started "
          f"{holder.get('since', '?')}")


def _describe(fd: int) -> str:
  holder = _read(fd)
  return _format(holder) if holder else "starting"
