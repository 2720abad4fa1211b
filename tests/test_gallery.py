"""The evaluation gallery: written by training and `evaluate --html`, checked in Chromium."""

import json
import os
import re

import numpy as np
import pytest
from PIL import Image
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from capflax import evaluate, gallery, run_files
from capflax.data import dataset, sources
from capflax.metrics.ptb import tokenize


def split_records(workdir, split):
  return dataset.load_splits(run_files.load_config(workdir), workdir)[split]


def table(browser, column: int) -> list[str]:
  """data-sort values of one column, in the page's current row order."""
  return browser.execute_script(
      "return Array.from(document.querySelectorAll('#gallery tbody tr'), "
      "r => r.cells[arguments[0]].dataset.sort)", column)


def test_training_writes_a_small_self_contained_gallery_per_split(tiny_run):
  workdir, results = tiny_run
  for split in ("val", "test"):
    page = open(os.path.join(workdir, f"gallery_{split}.html"), encoding="utf-8").read()
    sources_ = re.findall(r'src="([^"]*)"', page)
    records = split_records(workdir, split)
    assert len(sources_) == len(records) + min(gallery.NUM_ATTENTION, len(records))
    assert all(s.startswith("data:image/jpeg;base64,") for s in sources_)
    assert "http" not in page.replace("http-equiv", "")  # Nothing fetched from elsewhere.
    # Small: a few kB per thumbnail, tens of kB per attention sheet.
    assert len(page) < 20_000 + 8_000 * len(records) + 40_000 * gallery.NUM_ATTENTION
    assert all(r.filename in page for r in records)
    assert f"{results['eval'][split]['cider_d']:.4f}" in page  # The metrics table.


def test_gallery_scores_sorting_and_images_in_chromium(tiny_run, browser):
  from selenium.webdriver.common.by import By
  workdir, results = tiny_run
  records = split_records(workdir, "test")
  with open(os.path.join(workdir, "captions_test.json")) as f:
    captions = json.load(f)
  browser.get("file://" + os.path.join(workdir, "gallery_test.html"))
  names = browser.execute_script(
      "return Array.from(document.querySelectorAll('#gallery tbody tr .name'), e => e.textContent)")
  assert sorted(names) == sorted(r.filename for r in records)
  cider = [float(v) for v in table(browser, 4)]
  assert cider == sorted(cider)  # Worst first.
  # Each image's numbers are pycocoevalcap's per-image lists on the PTB-tokenised text.
  gts = {r.filename: [tokenize(c) for c in r.captions] for r in records}
  res = {r.filename: [tokenize(captions[r.filename])] for r in records}
  _, want_cider = Cider().compute_score(gts, res)
  _, want_bleu = Bleu(4).compute_score(gts, res, verbose=0)
  order = [r.filename for r in records]
  want = {n: (c, b) for n, c, b in zip(order, want_cider, want_bleu[3])}
  got = list(zip(names, cider, [float(v) for v in table(browser, 5)]))
  for name, c, b in got:
    assert c == pytest.approx(want[name][0], abs=1e-5) and b == pytest.approx(want[name][1],
                                                                            abs=1e-5)
  assert np.mean(cider) == pytest.approx(results["eval"]["test"]["cider_d"], abs=1e-5)

  bleu_header = browser.find_element(By.CSS_SELECTOR, 'th[data-col="5"]')
  bleu_header.click()
  bleu = [float(v) for v in table(browser, 5)]
  assert bleu == sorted(bleu)
  bleu_header.click()
  assert [float(v) for v in table(browser, 5)] == sorted(bleu, reverse=True)

  for details in browser.find_elements(By.TAG_NAME, "details"):
    details.click()  # Open each attention map.
  decoded = browser.execute_script(
      "return Array.from(document.images, i => i.complete && i.naturalWidth > 0)")
  assert len(decoded) == len(records) + min(gallery.NUM_ATTENTION, len(records))
  assert all(decoded)
  sheets = browser.find_elements(By.CSS_SELECTOR, "img.sheet")
  assert all(s.is_displayed() and s.size["width"] > 100 for s in sheets)


def test_evaluate_html_writes_the_beam_captions(tiny_run, tmp_path):
  workdir, _ = tiny_run
  result = evaluate.evaluate(workdir, "val", {"method": "beam", "beam_size": 2}, meteor=False,
                             output="eval_val_gallery.json", html=True)
  page = open(os.path.join(workdir, "gallery_val.html"), encoding="utf-8").read()
  for caption in result["captions"].values():
    assert f'<div class="gen">{caption}</div>' in page
  assert f"{result['metrics']['cider_d']:.4f}" in page


def test_scene_results_become_sortable_columns(tmp_path, browser):
  from selenium.webdriver.common.by import By
  records = []
  for i, colour in enumerate(("red", "green", "blue")):
    path = tmp_path / f"{colour}.png"
    Image.new("RGB", (40, 30), colour).save(path)
    records.append(sources.Record(path.name, str(path), (f"a {colour} square", "a square")))
  captions = {"red.png": "a red square", "green.png": ["a blue square", "a square"],
              "blue.png": "a blue circle"}
  scene = {"red.png": {"colour": True, "shape": True}, "green.png": {"colour": False,
           "shape": True}, "blue.png": {"colour": True, "shape": False}}
  gallery.write(str(tmp_path), "test", 7, {"cider_d": 1.5}, records, captions, scene=scene)
  browser.get("file://" + str(tmp_path / "gallery_test.html"))
  headers = [h.text.strip(" \u2195\u25b2\u25bc") for h in
             browser.find_elements(By.CSS_SELECTOR, "#gallery th")]
  assert headers == ["#", "image", "caption", "references", "CIDEr-D", "BLEU-4", "colour", "shape"]
  browser.find_element(By.CSS_SELECTOR, 'th[data-col="6"]').click()  # colour: wrong first
  rows = browser.execute_script(
      "return Array.from(document.querySelectorAll('#gallery tbody tr'), r => [r.cells[1]"
      ".textContent, r.cells[6].textContent, r.cells[7].textContent, r.cells[2].textContent])")
  assert rows[0][:3] == ["green.png", "\u2717", "\u2713"]
  assert rows[0][3].startswith("a blue square") and "a square" in rows[0][3]  # Both captions.
  assert sorted(r[0] for r in rows[1:]) == ["blue.png", "red.png"]
