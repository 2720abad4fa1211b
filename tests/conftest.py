"""Test-wide settings: quiet TF, a persistent XLA compilation cache, shared paths."""

import hashlib
import lzma
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The data loader's image-check cache: per test session, not the user's ~/.cache.
os.environ["CAPFLAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="capflax-test-cache-")
# A persistent XLA compilation cache, shared with the command lines the tests start.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), "capflax-test-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
FLICKR8K_FIXTURE = REPO / "tests" / "fixtures" / "flickr8k"  # Compressed; see its README.
SPLIT_LISTS = REPO / "capflax" / "data" / "flickr8k_splits"


def forced_devices_env(n: int = 8) -> dict:
  """Environment of a child Python process with `n` CPU devices and this repo importable."""
  return {"XLA_FLAGS": f"--xla_force_host_platform_device_count={n}", "JAX_PLATFORMS": "cpu",
          "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
          "JAX_COMPILATION_CACHE_DIR": os.environ["JAX_COMPILATION_CACHE_DIR"]}


def flickr8k_captions_csv():
  """The real Kaggle captions.txt, opened as text (for csv.reader)."""
  return lzma.open(FLICKR8K_FIXTURE / "captions.txt.xz", "rt", newline="", encoding="utf-8")


@pytest.fixture(scope="session")
def flickr8k_text(tmp_path_factory) -> pathlib.Path:
  """A folder of the public Flickr8k text files (token file, Kaggle CSV, split lists), as the
  release has them: decompressed from the repo's fixtures, each checked against the
  release's SHA256SUMS (the split lists are capflax's own shipped copies)."""
  out = tmp_path_factory.mktemp("flickr8k_text")
  sums = dict(line.split()[::-1] for line in (FLICKR8K_FIXTURE / "SHA256SUMS").read_text()
              .splitlines())
  for name in sums:
    packed = FLICKR8K_FIXTURE / f"{name}.xz"
    data = lzma.decompress(packed.read_bytes()) if packed.exists() else (
        SPLIT_LISTS / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sums[name], f"{name} differs from the release"
    (out / name).write_bytes(data)
  return out


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> pathlib.Path:
  """A small synthetic data set in the Kaggle layout, generated once per session."""
  from capflax.data import synthetic
  out = tmp_path_factory.mktemp("shapes")
  synthetic.generate(str(out), num_images=240, image_size=64, seed=3, log_every=0)
  return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[str, dict]:
  """(workdir, results) of `configs/demo.py:tiny` trained once, shared by every test that
  reads a finished run (training, evaluation, prediction)."""
  from capflax import train
  from configs import demo
  workdir = str(tmp_path_factory.mktemp("tiny_run"))
  return workdir, train.train_and_evaluate(demo.get_config("tiny"), workdir)


@pytest.fixture(scope="session")
def browser():
  """Headless Chromium driven by selenium (Debian's `chromium` and `chromium-driver`, which
  `.ci/run` installs); skipped where they are missing, unless CAPFLAX_REQUIRE_BROWSER=1."""
  driver_path = shutil.which("chromedriver")
  if not (driver_path and shutil.which("chromium")):
    if os.environ.get("CAPFLAX_REQUIRE_BROWSER") == "1":
      pytest.fail("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    pytest.skip("chromium / chromedriver not installed")
  from selenium import webdriver
  options = webdriver.ChromeOptions()
  options.binary_location = shutil.which("chromium")
  for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--window-size=1280,1000"):
    options.add_argument(flag)
  driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
  yield driver
  driver.quit()
