"""Workdir files through `etils.epath`: local paths, `epath.Path`s, and the gs:// code path."""

import json

import ml_collections
import pytest
from etils import epath

from capflax import run_files
from capflax.errors import WorkdirError
from capflax.data import dataset, sources
from capflax.data.tokenizer import Vocabulary

# What epath routes gs:// paths through here (TensorFlow is installed), applied to local files.
GCS_BACKEND = epath.backend.tf_backend


@pytest.fixture(params=["os", "gfile"])
def backend(request, monkeypatch):
  """Runs a test with the local backend, then with the gs:// one (tf.io.gfile) on tmp_path."""
  if request.param == "gfile":
    assert epath.Path("gs://bucket/run")._backend is GCS_BACKEND
    monkeypatch.setattr(epath.gpath.PosixGPath, "_backend", property(lambda _: GCS_BACKEND))
  return request.param


@pytest.mark.parametrize("as_path", [str, epath.Path])
def test_write_json_replaces_whole_file(tmp_path, backend, as_path):
  path = as_path(tmp_path / "results.json")
  run_files.write_json(path, {"step": 1, "caption": "a dog"})
  run_files.write_json(path, {"step": 2})  # Over an existing file.
  assert json.loads((tmp_path / "results.json").read_text()) == {"step": 2}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # No .tmp left.
  assert run_files.read_json(path) == {"step": 2}


@pytest.mark.parametrize("as_path", [str, epath.Path])
def test_config_round_trip(tmp_path, backend, as_path):
  config = ml_collections.ConfigDict({"train": {"batch_size": 8}, "data": {"dir": "gs://b/d"}})
  run_files.save_config(as_path(tmp_path), config)
  assert json.loads((tmp_path / run_files.CONFIG).read_text()) == config.to_dict()
  assert run_files.load_config(as_path(tmp_path)).to_dict() == config.to_dict()
  with pytest.raises(WorkdirError, match=r"none/config\.json: missing; is .*none a capflax"):
    run_files.load_config(as_path(tmp_path / "none"))


@pytest.mark.parametrize("as_path", [str, epath.Path])
def test_vocabulary_save_load(tmp_path, backend, as_path):
  vocab = Vocabulary(["dog", "über", "a"])
  vocab.save(as_path(tmp_path / "vocab.json"))
  assert json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))["tokens"] == [
      "<pad>", "<bos>", "<eos>", "<unk>", "dog", "über", "a"]
  assert Vocabulary.load(as_path(tmp_path / "vocab.json")) == vocab


@pytest.mark.parametrize("as_path", [str, epath.Path])
def test_dataset_vocabulary_saved_in_a_new_workdir_then_reused(tmp_path, backend, as_path):
  config = ml_collections.ConfigDict({"data": {"min_count": 1}})
  workdir = as_path(tmp_path / "runs" / "new")  # Neither folder exists yet.
  first = dataset.vocabulary(config, workdir, [sources.Record("a.jpg", "a.jpg", ("red dog",))])
  assert first.itos[4:] == ["dog", "red"]
  assert Vocabulary.load(tmp_path / "runs" / "new" / dataset.VOCAB_FILE) == first
  other_train = [sources.Record("b.jpg", "b.jpg", ("blue cat",))]
  assert dataset.vocabulary(config, workdir, other_train) == first  # Loaded, not rebuilt.
