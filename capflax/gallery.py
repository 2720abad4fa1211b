"""An evaluation as one self-contained HTML page: every image, its captions and its scores.

`WORKDIR/gallery_<split>.html` opens in any browser, offline: thumbnails and attention maps
are embedded as small JPEG data URIs, the table sorts by clicking a column (worst CIDEr-D
first to begin with), and the first few images carry their cross-attention maps. Written
by the final evaluation of every training run and by `capflax.evaluate --html`.
"""

import base64
import html
import io
import json

import jax
import numpy as np
from etils import epath
from PIL import Image

from capflax import attention_maps
from capflax.data import pipeline, sources
from capflax.metrics.coco import coco_image_scores

THUMBNAIL = 144  # Pixels on the longer side of each embedded photo.
NUM_ATTENTION = 8  # Images (the split's first, in order) whose attention maps are embedded.


def file_name(split: str) -> str:
  return f"gallery_{split}.html"


def data_uri(image: Image.Image, quality: int = 80) -> str:
  buffer = io.BytesIO()
  image.convert("RGB").save(buffer, "JPEG", quality=quality)
  return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnail(path: str) -> Image.Image:
  with Image.open(path) as image:
    image = image.convert("RGB")
    image.thumbnail((THUMBNAIL, THUMBNAIL), Image.BILINEAR)
    return image


def attention_sheets(config, variables, vocab, records: list[sources.Record],
                     captions: dict[str, str]) -> dict[str, Image.Image]:
  """filename -> `attention_maps.render` sheet of its generated caption, for `records`.

  The images go through the eval pipeline, so the maps show what the evaluation's model saw.
  """
  if not records:
    return {}
  attend = attention_maps.make_attend(config, len(vocab))
  batch = next(pipeline.eval_dataset(records, image_size=config.data.image_size,
                                     global_batch=len(records)))
  tokens = np.stack([vocab.encode(captions[r.filename], config.data.max_len)[1:]
                     for r in records])  # [b, T]
  weights = np.asarray(jax.device_get(attend(variables, batch["image"], tokens)))  # [b, T, n]
  sheets = {}
  for row, r in enumerate(records):
    words = attention_maps.panel_words(tokens[row], vocab)
    with Image.open(r.path) as photo:
      sheets[r.filename] = attention_maps.render(photo, words, weights[row, :len(words)])
  return sheets


def _cell(value) -> tuple[str, str]:
  """(sort key, shown text) of a per-image scene entry: right/wrong, a number, or absent."""
  if value is None:
    return "", "&ndash;"
  if isinstance(value, bool):
    return str(int(value)), "&#10003;" if value else "&#10007;"
  if isinstance(value, (int, float)):
    return f"{value:.6g}", f"{value:.2f}"
  return html.escape(str(value)), html.escape(str(value))


def render_page(title: str, metrics: dict, records: list[sources.Record],
                captions: dict[str, list[str]], scores: dict[str, dict],
                thumbnails: dict[str, str], sheets: dict[str, str],
                scene: dict[str, dict] | None = None) -> str:
  """The page's HTML. captions: filename -> generated captions, the first one scored;
  scores: filename -> {'cider_d', 'bleu4'}; thumbnails, sheets: filename -> data URI;
  scene: filename -> {attribute: right (bool), a number, or None}, when the data has it."""
  scene_keys = sorted({k for s in (scene or {}).values() for k in s})
  head = ["#", "image", "caption", "references", "CIDEr-D", "BLEU-4", *scene_keys]
  sort_types = ["num", None, "text", None, "num", "num"] + ["num"] * len(scene_keys)
  header = "".join(
      f'<th data-col="{i}" data-type="{t}" class="sortable">{html.escape(h)}</th>' if t
      else f"<th>{html.escape(h)}</th>" for i, (h, t) in enumerate(zip(head, sort_types)))
  rows = []
  for i, r in enumerate(records):
    generated = captions[r.filename]
    s = scores[r.filename]
    cells = [(str(i), str(i)),
             ("", f'<img src="{thumbnails[r.filename]}" alt="{html.escape(r.filename)}">'
                  f'<div class="name">{html.escape(r.filename)}</div>'),
             (html.escape(generated[0]),
              "".join(f'<div class="{"gen" if k == 0 else "alt"}">{html.escape(c)}</div>'
                      for k, c in enumerate(generated))
              + (f'<details><summary>attention</summary><img class="sheet" '
                 f'src="{sheets[r.filename]}" alt="attention"></details>'
                 if r.filename in sheets else "")),
             ("", "".join(f"<div>{html.escape(c)}</div>" for c in r.captions)),
             (f"{s['cider_d']:.6g}", f"{s['cider_d']:.3f}"),
             (f"{s['bleu4']:.6g}", f"{s['bleu4']:.3f}")]
    cells += [_cell((scene or {}).get(r.filename, {}).get(k)) for k in scene_keys]
    rows.append("<tr>" + "".join(f'<td data-sort="{key}">{shown}</td>' for key, shown in cells)
                + "</tr>")
  metric_rows = "".join(
      f"<tr><th>{html.escape(k)}</th><td>{v:.4f}</td></tr>" if isinstance(v, float)
      else f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v))}</td></tr>"
      for k, v in metrics.items())
  return _PAGE.format(title=html.escape(title), metrics=metric_rows, header=header,
                      rows="\n".join(rows), cider_col=head.index("CIDEr-D"))


def write(workdir: str, split: str, step: int, metrics: dict, records: list[sources.Record],
          captions: dict[str, str | list[str]], *, config=None, variables=None, vocab=None,
          scene: dict[str, dict] | None = None, num_attention: int = NUM_ATTENTION) -> str:
  """Writes workdir/gallery_<split>.html (first process only) and returns its path.

  Per-image CIDEr-D and BLEU-4 are coco-caption's, over the whole split (CIDEr-D's idf is
  the split's). Given the run's `config`, `variables` and `vocab`, the first `num_attention`
  images get their attention maps. Every process must call this: the maps run on all devices.
  """
  captions = {k: [v] if isinstance(v, str) else list(v) for k, v in captions.items()}
  scored = [r for r in records if r.filename in captions]
  scores = coco_image_scores({r.filename: captions[r.filename][0] for r in scored},
                             {r.filename: r.captions for r in scored})
  sheets = {}
  if config is not None and num_attention:
    sheets = attention_sheets(config, variables, vocab, scored[:num_attention],
                              {k: v[0] for k, v in captions.items()})
  path = epath.Path(workdir) / file_name(split)
  if jax.process_index() == 0:
    page = render_page(f"capflax {split} split, step {step}", metrics, scored, captions, scores,
                       {r.filename: data_uri(thumbnail(r.path)) for r in scored},
                       {k: data_uri(v) for k, v in sheets.items()}, scene)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
  return str(path)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px; vertical-align: top;
  text-align: left; }}
th.sortable {{ cursor: pointer; user-select: none; background: #f4f4f4; }}
th.sortable::after {{ content: " \\2195"; color: #999; }}
th.asc::after {{ content: " \\25B2"; color: #222; }}
th.desc::after {{ content: " \\25BC"; color: #222; }}
#metrics th {{ background: none; }}
.gen {{ font-weight: 600; }} .alt {{ color: #555; }} .name {{ font-size: 75%; color: #777; }}
img.sheet {{ max-width: 820px; }}
</style></head><body>
<h1>{title}</h1>
<table id="metrics">{metrics}</table>
<p>Click a column to sort; the table starts with the lowest CIDEr-D.</p>
<table id="gallery"><thead><tr>{header}</tr></thead><tbody>
{rows}
</tbody></table>
<script>
const table = document.getElementById("gallery");
function sortBy(th, ascending) {{
  const col = Number(th.dataset.col), numeric = th.dataset.type === "num";
  const key = row => row.cells[col].dataset.sort;
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {{
    const x = key(a), y = key(b);
    if (numeric) {{  // Absent values last, whatever the direction.
      if (x === "" || y === "") return (x === "") - (y === "");
      return ascending ? x - y : y - x;
    }}
    return ascending ? x.localeCompare(y) : y.localeCompare(x);
  }});
  rows.forEach(row => table.tBodies[0].appendChild(row));
  table.querySelectorAll("th.sortable").forEach(h => h.classList.remove("asc", "desc"));
  th.classList.add(ascending ? "asc" : "desc");
}}
table.querySelectorAll("th.sortable").forEach(th => th.addEventListener("click", () =>
  sortBy(th, !th.classList.contains("asc"))));
sortBy(table.querySelector('th[data-col="{cider_col}"]'), true);
</script>
</body></html>
"""
