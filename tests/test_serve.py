"""`capflax.serve` on the shared tiny run: a real server process, real HTTP, a real browser."""

import base64
import concurrent.futures
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import requests
from PIL import Image

from capflax import attention_maps
from capflax.data.tokenizer import Vocabulary
from tests.conftest import REPO

MAX_PIXELS = 100_000


@pytest.fixture(scope="module")
def server(tiny_run):
  """(base URL, workdir) of one server process for the whole module."""
  workdir, _ = tiny_run
  process = subprocess.Popen(
      [sys.executable, "-m", "capflax.serve", f"--workdir={workdir}", "--port=0",
       "--batch_sizes=1,4", f"--max_pixels={MAX_PIXELS}", "--max_request_bytes=200000"],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  url = None
  for line in process.stdout:  # Blocks until the server says where it listens.
    if " at http://" in line:
      url = line.split(" at ")[-1].strip()
      break
  if url is None:
    process.wait(5)
    pytest.fail(f"capflax.serve exited with {process.returncode} before serving")
  yield url, workdir
  process.terminate()
  process.wait(30)


def image_paths(workdir, n):
  images = os.path.join(workdir, "synthetic_data", "Images")
  return [os.path.join(images, f) for f in sorted(os.listdir(images))[:n]]


def post(url, path, **fields):
  with open(path, "rb") as f:
    return requests.post(url + "api/caption", files={"image": f}, data=fields, timeout=120)


def test_binds_loopback_and_reports_health(server):
  url, _ = server
  assert url.startswith("http://127.0.0.1:")
  health = requests.get(url + "healthz", timeout=30).json()
  assert health["status"] == "ok" and health["step"] == 6
  assert health["batch_sizes"] == [1, 4]
  assert health["compiled"]["greedy/1"] == 2  # Warmed up: both batch sizes.


def test_greedy_captions_equal_training_and_concurrent_requests_share_compiled_batches(server):
  url, workdir = server
  with open(os.path.join(workdir, "captions_test.json")) as f:
    trained = json.load(f)  # What training's evaluation wrote for these images.
  names = sorted(trained)[:6]
  paths = [os.path.join(workdir, "synthetic_data", "Images", n) for n in names]
  alone = [post(url, p).json()["captions"] for p in paths]
  assert [c[0]["text"] for c in alone] == [trained[n] for n in names]
  with concurrent.futures.ThreadPoolExecutor(6) as pool:  # 6 at once: batches of <= 4.
    together = list(pool.map(lambda p: post(url, p).json()["captions"], paths * 2))
  assert [c[0]["text"] for c in together] == [trained[n] for n in names] * 2
  np.testing.assert_allclose([c[0]["log_prob"] for c in together],
                             [c[0]["log_prob"] for c in alone] * 2, rtol=1e-4)
  # Beam searches at two length penalties: one compile per batch size, none per request.
  for alpha in ("0.0", "1.3"):
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
      list(pool.map(lambda p: post(url, p, method="beam", beam_size="2", alpha=alpha), paths))
  compiled = requests.get(url + "healthz", timeout=30).json()["compiled"]
  assert compiled["greedy/1"] == 2 and compiled["beam/2"] <= 2


def test_beam_n_best_scores_and_attention_maps(server):
  url, workdir = server
  vocab = Vocabulary.load(os.path.join(workdir, "vocab.json"))
  body = post(url, image_paths(workdir, 1)[0], method="beam", beam_size="3", alpha="0.8",
              attention="1").json()
  assert body["settings"] == {"method": "beam", "beam_size": 3, "alpha": 0.8, "temperature": 1.0}
  captions = body["captions"]
  assert len(captions) == 3
  scores = [c["score"] for c in captions]
  assert scores == sorted(scores, reverse=True)  # Best first.
  for c in captions:
    att = c["attention"]
    words = c["text"].split()
    assert att["words"][:len(words)] == words and set(att["words"][len(words):]) <= {"<eos>"}
    assert all(w in vocab.stoi for w in att["words"])
    # GNMT: score = log P / ((5 + length) / 6) ** alpha, the length counting EOS.
    assert c["score"] == pytest.approx(c["log_prob"] / ((5 + len(att["words"])) / 6) ** 0.8,
                                       rel=1e-5)
    weights = np.array(att["weights"])  # [words, n]
    assert weights.shape == (len(att["words"]), att["grid"] ** 2)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-3)  # A distribution per word.
    np.testing.assert_allclose(att["peaks"], weights.max(-1), atol=1e-4)
    want = attention_maps.overlays(weights)  # [words, g, g, 4], one scale for the caption
    for w, uri in enumerate(att["overlays"]):
      assert uri.startswith("data:image/png;base64,")
      png = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
      np.testing.assert_allclose(png.astype(int), want[w].astype(int), atol=1)


def test_sampling_returns_the_asked_number_of_captions(server):
  url, workdir = server
  body = post(url, image_paths(workdir, 1)[0], method="sample", samples="3",
              temperature="1.5").json()
  assert body["settings"]["samples"] == 3 and body["settings"]["temperature"] == 1.5
  log_probs = [c["log_prob"] for c in body["captions"]]
  assert len(log_probs) == 3 and log_probs == sorted(log_probs, reverse=True)
  assert "attention" not in body["captions"][0]  # Only on request.


def test_bad_requests_get_one_line_400s_and_the_server_keeps_serving(server, tmp_path):
  url, workdir = server
  good = image_paths(workdir, 1)[0]
  text = tmp_path / "notes.jpg"
  text.write_text("not an image")
  truncated = tmp_path / "truncated.png"
  truncated.write_bytes(open(good, "rb").read()[:60])
  big = tmp_path / "big.png"
  Image.new("L", (400, 300)).save(big)  # 120,000 pixels, over the server's 100,000.
  cases = [
      (post(url, str(text)), 400, "not an image (no format PIL reads)."),
      (post(url, str(big)), 400, f"not a usable image: 400x300 pixels exceeds "
                                 f"--max_pixels={MAX_PIXELS}"),
      (post(url, good, method="nucleus"), 400, "method='nucleus': choose one of greedy, beam, "
                                               "sample."),
      (post(url, good, method="beam", beam_size="0"), 400, "beam_size='0' is outside 1..8."),
      (post(url, good, method="beam", beam_size="two"), 400, "beam_size='two' is not an "
                                                             "integer."),
      (post(url, good, method="sample", temperature="nan"), 400, "temperature='nan' is outside "
                                                                 "0.05..5.0."),
      (post(url, good, method="sample", samples="9"), 400, "samples='9' is outside 1..8."),
      (post(url, good, attention="maybe"), 400, "attention='maybe': give 0 or 1."),
      (requests.post(url + "api/caption", timeout=30), 400,
       "no image: send it as the multipart field 'image' or as the body."),
      (requests.post(url + "api/caption", data=b"\0" * 300_000, timeout=30), 413,
       "request body exceeds 200000 bytes (--max_request_bytes)."),
  ]
  for response, status, message in cases:
    assert (response.status_code, response.json()) == (status, {"error": message})
  response = post(url, str(truncated))
  assert response.status_code == 400 and response.json()["error"].startswith("not a usable image")
  assert "\n" not in response.json()["error"]
  # Still serving; the raw body works as well as a multipart form.
  with open(good, "rb") as f:
    raw = requests.post(url + "api/caption?method=greedy", data=f.read(), timeout=60)
  assert raw.status_code == 200 and raw.json()["captions"][0]["text"] == \
      post(url, good).json()["captions"][0]["text"]


def first_caption(browser) -> str:
  """The page's first caption, read in one script (the list may be redrawn meanwhile)."""
  words = browser.execute_script("return Array.from(document.querySelectorAll("
                                 "'#captions li:first-child .word'), s => s.textContent)")
  return " ".join(w for w in words if w != "<eos>")


def test_page_shows_captions_and_attention_maps_in_chromium(server, browser):
  from selenium.webdriver.common.action_chains import ActionChains
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import Select, WebDriverWait
  url, workdir = server
  first, second = image_paths(workdir, 2)
  want = post(url, first).json()["captions"][0]
  browser.get(url)
  browser.find_element(By.ID, "file").send_keys(first)
  wait = WebDriverWait(browser, 120)
  wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#captions .word"))
  assert first_caption(browser) == want["text"]
  words = browser.find_elements(By.CSS_SELECTOR, "#captions li:first-child .word")
  assert browser.find_element(By.ID, "error").text == ""

  ActionChains(browser).move_to_element(words[0]).perform()  # Hover: that word's map.
  heat = browser.find_element(By.ID, "heat")
  wait.until(lambda b: heat.is_displayed() and b.execute_script(
      "return arguments[0].complete && arguments[0].naturalWidth", heat) > 0)
  assert heat.get_attribute("src").startswith("data:image/png;base64,")
  photo = browser.find_element(By.ID, "photo")
  assert heat.size == photo.size  # The map covers the photo.
  assert browser.find_element(By.ID, "mapLabel").text.startswith(f'"{words[0].text}": peak')
  words[1].click()  # Pinned: stays when the pointer leaves.
  ActionChains(browser).move_to_element(browser.find_element(By.TAG_NAME, "h1")).perform()
  assert heat.is_displayed()
  assert browser.find_element(By.ID, "mapLabel").text.startswith(f'"{words[1].text}": peak')

  Select(browser.find_element(By.ID, "method")).select_by_value("beam")  # n-best on the page.
  beam = browser.find_element(By.ID, "beam_size")
  beam.clear()
  beam.send_keys("3\n")
  wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#captions li")) == 3)
  assert "score" in browser.find_element(By.CSS_SELECTOR, "#captions li .score").text

  # Dropping a second image captions it (a DataTransfer built in the page).
  data = base64.b64encode(open(second, "rb").read()).decode()
  browser.execute_script("""
    const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
    document.getElementById("drop").dispatchEvent(
        new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));""", data)
  want = post(url, second, method="beam", beam_size="3").json()["captions"][0]["text"]
  wait.until(lambda b: first_caption(b) == want)
