"""Test-wide settings: quiet TF, a persistent XLA compilation cache, shared paths."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_FLICKR8K = REPO.parent / "shared" / "data" / "flickr8k"

jax.config.update("jax_compilation_cache_dir", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), "capflax-test-jax-cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(scope="session")
def flickr8k_text() -> pathlib.Path:
  """The public Flickr8k text files (captions, split lists) shipped beside the repo."""
  if not (SHARED_FLICKR8K / "Flickr8k.token.txt").exists():
    pytest.skip(f"{SHARED_FLICKR8K} is not present")
  return SHARED_FLICKR8K


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> pathlib.Path:
  """A small synthetic data set in the Kaggle layout, generated once per session."""
  from capflax.data import synthetic
  out = tmp_path_factory.mktemp("shapes")
  synthetic.generate(str(out), num_images=240, image_size=64, seed=3, log_every=0)
  return out
