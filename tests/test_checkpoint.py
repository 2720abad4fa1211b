"""Checkpoint retention, and a checkpoint truncated after the fact is skipped, not fatal."""

import logging
import os

import jax
import jax.numpy as jnp
import numpy as np

from capflax import checkpoint


def _state(step):
  return {"w": jnp.full((64, 64), float(step)), "step": jnp.array(step, jnp.int32)}


def _abstract():
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                     sharding=jax.sharding.SingleDeviceSharding(
                                                         jax.devices()[0])), _state(0))


def _save_steps(workdir, steps, keep=10, keep_every=0):
  mngr = checkpoint.manager(str(workdir), keep, keep_every)
  for step in steps:
    checkpoint.save(mngr, _state(step), {"step": step, "data": {"next_element": 8 * step}})
  mngr.wait_until_finished()
  return mngr


def test_keeps_the_last_n_plus_every_mth(tmp_path):
  mngr = _save_steps(tmp_path, range(1, 11), keep=2, keep_every=4)
  assert mngr.all_steps() == [4, 8, 9, 10]
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "4", "8", "9"]


def test_restores_state_and_data_position(tmp_path):
  mngr = _save_steps(tmp_path, [3, 6])
  state, meta = checkpoint.restore_latest(mngr, str(tmp_path), _abstract())
  assert meta == {"step": 6, "data": {"next_element": 48}}
  np.testing.assert_array_equal(state["w"], np.full((64, 64), 6.0))


def test_truncated_checkpoint_is_skipped_with_a_warning_and_kept_aside(tmp_path, caplog):
  mngr = _save_steps(tmp_path, [2, 4])
  newest = tmp_path / "checkpoints" / "4"
  files = [os.path.join(d, f) for d, _, fs in os.walk(newest / "state") for f in fs]
  assert files
  for f in files:  # As if the copy or the write had stopped half way.
    size = os.path.getsize(f)
    with open(f, "r+b") as fh:
      fh.truncate(size // 2)
  with caplog.at_level(logging.WARNING):
    state, meta = checkpoint.restore_latest(mngr, str(tmp_path), _abstract())
  assert meta["step"] == 2 and float(state["w"][0, 0]) == 2.0
  assert any("Checkpoint 4" in r.getMessage() and "unreadable" in r.getMessage()
             for r in caplog.records)
  assert not newest.exists() and (tmp_path / checkpoint.UNREADABLE / "4").is_dir()
  assert mngr.all_steps() == [2]
  mngr.close()


def test_no_checkpoint_gives_none(tmp_path):
  assert checkpoint.restore_latest(checkpoint.manager(str(tmp_path), 2), str(tmp_path),
                                   _abstract()) is None


def test_a_state_of_other_shapes_is_refused_and_nothing_is_moved(tmp_path):
  """Another run's checkpoint (a changed model) is no broken file: WorkdirError names the
  arrays that differ, and every checkpoint stays where it is."""
  import pytest
  from capflax.errors import WorkdirError
  mngr = _save_steps(tmp_path, [2, 4])
  wider = {"w": jax.ShapeDtypeStruct((64, 32), jnp.float32,
                                     sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0])),
           "step": _abstract()["step"]}
  with pytest.raises(WorkdirError, match=r"checkpoint 4 .* another shape than this config's "
                     r"\(w: saved \(64, 64\), expected \(64, 32\)\); it was left as it is"):
    checkpoint.restore_latest(mngr, str(tmp_path), wider)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "4"]
  assert not (tmp_path / checkpoint.UNREADABLE).exists()


def test_the_reader_never_writes_and_skips_a_save_in_flight(tmp_path):
  """Inference's manager: a training's temporary folder is left alone, the newest complete
  step is read, and a workdir without checkpoints gets no checkpoints/ folder."""
  import pytest
  from capflax.errors import WorkdirError
  _save_steps(tmp_path, [2, 4]).close()
  in_flight = tmp_path / "checkpoints" / "6.orbax-checkpoint-tmp-1234"
  (in_flight / "state").mkdir(parents=True)
  reader = checkpoint.reader(str(tmp_path))
  _, meta = checkpoint.restore_latest(reader, str(tmp_path), _abstract(), set_aside=False)
  assert meta["step"] == 4 and in_flight.is_dir()
  with pytest.raises(WorkdirError, match="checkpoints: no checkpoints"):
    checkpoint.reader(str(tmp_path / "none"))
  assert not (tmp_path / "none").exists()
