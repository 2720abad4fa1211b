"""Serve a trained workdir: a web page and a JSON API that caption images, with attention maps.

    python -m capflax.serve --workdir=DIR [--host=127.0.0.1] [--port=8000]

The workdir is loaded once. Requests wait in one queue; a worker thread takes every queued
request with the same decode settings (up to the largest of `--batch_sizes`), pads them to
the smallest compiled batch size that holds them and runs one jitted search, so concurrent
clients share a call. The search is compiled per (method, beam size or number of samples)
on first use and cached; the length penalty and temperature are traced arguments, so
changing them recompiles nothing. Flask serves the page and the API; waitress is the WSGI
server (a thread per connection, up to `--threads`).
"""

import base64
import collections
import dataclasses
import functools
import io
import json
import pathlib
import sys
import threading
from concurrent import futures

import flask
import jax
import jax.numpy as jnp
import numpy as np
import PIL
import waitress
from absl import app, flags, logging
from werkzeug import exceptions

from capflax import attention_maps, cli, decode, evaluation, inference, sharding
from capflax.data.tokenizer import EOS_ID, PAD_ID
from capflax.models import captioner

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A capflax workdir (config.json, vocab.json, checkpoints/).")
flags.DEFINE_string("host", "127.0.0.1", "Address to bind; the default answers this machine only.")
flags.DEFINE_integer("port", 8000, "TCP port (0: any free one, printed at start).")
flags.DEFINE_list("batch_sizes", ["1", "4", "16", "32"], "Compiled batch sizes (rounded up to "
                  "a multiple of the device count); the largest bounds a batch.")
flags.DEFINE_integer("max_beam_size", 8, "Largest beam size a request may ask for.")
flags.DEFINE_integer("max_samples", 8, "Most captions a sampling request may ask for.")
flags.DEFINE_integer("max_request_bytes", 16 * 2**20, "Larger request bodies get HTTP 413.")
flags.DEFINE_integer("max_pixels", 40_000_000, "Images with more pixels get HTTP 400.")
flags.DEFINE_integer("threads", 64, "Connections served at once.")
flags.DEFINE_bool("warmup", True, "Compile the workdir's own decode settings for every batch "
                  "size before serving, so no first request waits for a compile.")
flags.mark_flags_as_required(["workdir"])

PAGE = pathlib.Path(__file__).with_name("serve_page.html")
METHODS = ("greedy", "beam", "sample")
ALPHA_RANGE = (0.0, 2.0)
TEMPERATURE_RANGE = (0.05, 5.0)


class BadRequest(ValueError):
  """A request the server refuses with HTTP 400 and this one-line message."""


@dataclasses.dataclass(frozen=True)
class Settings:
  """One request's decode settings. `width`: beam size, number of samples, or 1 (greedy)."""
  method: str
  width: int
  alpha: float
  temperature: float
  attention: bool = False

  @property
  def key(self) -> tuple:
    """Requests with equal keys run in one batch."""
    return self.method, self.width, self.alpha, self.temperature


@dataclasses.dataclass(frozen=True)
class Limits:
  max_beam_size: int = 8
  max_samples: int = 8


def _number(values, name: str, kind, default, low, high):
  raw = values.get(name)
  if raw is None or raw == "":
    return default
  try:
    value = kind(raw)
  except ValueError:
    raise BadRequest(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}.")
  if not low <= value <= high:  # NaN too.
    raise BadRequest(f"{name}={raw!r} is outside {low}..{high}.")
  return value


def parse_settings(values, decode_config, limits: Limits) -> Settings:
  """Settings from request fields (strings), the workdir's `config.decode` as defaults."""
  method = values.get("method") or decode_config.method
  if method not in METHODS:
    raise BadRequest(f"method={method!r}: choose one of {', '.join(METHODS)}.")
  alpha = _number(values, "alpha", float, decode_config.alpha, *ALPHA_RANGE)
  temperature = _number(values, "temperature", float, decode_config.temperature,
                        *TEMPERATURE_RANGE)
  if method == "beam":
    width = _number(values, "beam_size", int, min(decode_config.beam_size, limits.max_beam_size),
                    1, limits.max_beam_size)
  elif method == "sample":
    width = _number(values, "samples", int, 1, 1, limits.max_samples)
  else:
    width = 1
  attention = values.get("attention", "0").lower()
  if attention not in ("0", "1", "true", "false", ""):
    raise BadRequest(f"attention={values.get('attention')!r}: give 0 or 1.")
  return Settings(method, width, alpha if method == "beam" else 0.0,
                  temperature if method == "sample" else 1.0, attention in ("1", "true"))


def _data_uri_png(rgba: np.ndarray) -> str:
  return "data:image/png;base64," + base64.b64encode(
      attention_maps.png_bytes(rgba)).decode("ascii")


class Captioner:
  """The loaded run, its compiled searches, and the batching worker."""

  def __init__(self, run: inference.Run, batch_sizes, limits: Limits = Limits()):
    self.run, self.limits = run, limits
    devices = run.mesh.size
    self.batch_sizes = sorted({-(-int(b) // devices) * devices for b in batch_sizes})
    if not self.batch_sizes or self.batch_sizes[0] < 1:
      raise ValueError(f"--batch_sizes must be positive integers, got {batch_sizes}.")
    self.steps = evaluation.decode_settings(run.config)["max_len"]
    self._searches = {}  # (method, width) -> jitted search; each compiles once per batch size.
    model = captioner.build(run.config, len(run.vocab))
    self._score = jax.jit(functools.partial(_score_and_attend, model))
    self.batch_fill = collections.Counter()  # Requests per batch -> batches run.
    self._pending = collections.deque()  # (settings, image [s, s, 3], future)
    self._wake = threading.Condition()
    threading.Thread(target=self._work, daemon=True, name="capflax-batcher").start()

  def search(self, method: str, width: int):
    """jitted (variables, images [B, s, s, 3], rng, alpha, temperature) -> [B, width, T]."""
    if (method, width) not in self._searches:
      config = self.run.config.copy_and_resolve_references()
      config.decode.method = method
      if method == "beam":
        config.decode.beam_size = width
      self._searches[method, width] = evaluation.make_generate(
          config, len(self.run.vocab), self.run.mesh, num_return=width, tunable=True)
    return self._searches[method, width]

  def compiled(self) -> dict[str, int]:
    """'method/width' -> how many batch sizes its search has been compiled for so far."""
    return {f"{m}/{w}": fn._cache_size() for (m, w), fn in list(self._searches.items())}

  def warm_up(self, settings: Settings) -> None:
    s = self.run.config.data.image_size
    for b in self.batch_sizes:
      self._run_batch([(settings, np.zeros((s, s, 3), np.uint8), futures.Future())], b)

  def caption(self, image: np.ndarray, settings: Settings) -> list[dict]:
    """Captions of one image [s, s, 3] uint8, best first; blocks until its batch has run."""
    future = futures.Future()
    with self._wake:
      self._pending.append((settings, image, future))
      self._wake.notify()
    return future.result()

  def _work(self):
    while True:
      with self._wake:
        while not self._pending:
          self._wake.wait()
        key = self._pending[0][0].key
        jobs = [j for j in self._pending if j[0].key == key][:self.batch_sizes[-1]]
        for job in jobs:
          self._pending.remove(job)
      size = next(b for b in self.batch_sizes if b >= len(jobs))
      self.batch_fill[len(jobs)] += 1
      try:
        self._run_batch(jobs, size)
      except Exception as e:  # noqa: BLE001  The requests fail; the server keeps serving.
        logging.exception("Batch of %d failed.", len(jobs))
        for _, _, future in jobs:
          if not future.done():
            future.set_exception(RuntimeError(f"captioning failed: {type(e).__name__}: {e}"))

  def _run_batch(self, jobs, size: int) -> None:
    settings = jobs[0][0]
    s = self.run.config.data.image_size
    images = np.zeros((size, s, s, 3), np.uint8)  # [B, s, s, 3]: padded to a compiled size.
    images[:len(jobs)] = [image for _, image, _ in jobs]
    global_images = sharding.global_batch({"image": images}, self.run.mesh)["image"]
    rng = jax.random.PRNGKey(np.random.randint(2**31))  # Fresh samples per request.
    tokens = self.search(settings.method, settings.width)(
        self.run.variables, global_images, rng, jnp.float32(settings.alpha),
        jnp.float32(settings.temperature))  # [B, R, T]
    log_probs, attention = jax.device_get(self._score(self.run.variables, global_images, tokens))
    tokens = np.asarray(jax.device_get(tokens))
    for row, (job_settings, _, future) in enumerate(jobs):
      future.set_result(self._captions(tokens[row], log_probs[row], attention[row], job_settings))

  def _captions(self, tokens, log_probs, attention, settings: Settings) -> list[dict]:
    """tokens [R, T], log_probs [R], attention [R, T, n] -> the response's caption list."""
    out = []
    for k in range(tokens.shape[0]):
      words = attention_maps.panel_words(tokens[k], self.run.vocab)
      caption = {"text": self.run.vocab.decode(tokens[k]), "log_prob": float(log_probs[k])}
      if settings.method == "beam":  # The search's own ranking key.
        caption["score"] = float(log_probs[k] / decode.length_penalty(len(words), settings.alpha))
      if settings.attention:
        weights = attention[k, :len(words)]  # [words, n]
        caption["attention"] = {
            "words": words, "grid": attention_maps.grid_size(weights.shape[-1]),
            "peaks": [round(float(w), 4) for w in weights.max(-1)],
            "weights": np.round(weights, 5).tolist(),
            "overlays": [_data_uri_png(o) for o in attention_maps.overlays(weights)]}
      out.append(caption)
    if settings.method == "sample":
      out.sort(key=lambda c: -c["log_prob"])
    return out


def _score_and_attend(model, variables, images, tokens):
  """images [B, s, s, 3], tokens [B, R, T] -> (log P of each caption through its EOS [B, R],
  last-layer cross-attention [B, R, T, n]), from one teacher-forced pass."""
  b, r, t = tokens.shape
  flat = tokens.reshape(b * r, t)  # [B*R, T]
  logits, attention = attention_maps.teacher_forced(model, variables, jnp.repeat(images, r, 0),
                                                    flat)
  logp = jnp.take_along_axis(jax.nn.log_softmax(logits.astype(jnp.float32)), flat[..., None],
                             -1)[..., 0]  # [B*R, T]
  ended_before = jnp.cumsum(flat == EOS_ID, 1) - (flat == EOS_ID)  # [B*R, T] EOSs before t
  keep = (ended_before == 0) & (flat != PAD_ID)
  return (jnp.sum(jnp.where(keep, logp, 0.0), 1).reshape(b, r),
          attention.reshape(b, r, t, -1))


def create_app(engine: Captioner, max_request_bytes: int, max_pixels: int) -> flask.Flask:
  """The Flask app: GET / (the page), POST /api/caption, GET /healthz."""
  flask_app = flask.Flask("capflax.serve")
  flask_app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
  run = engine.run
  defaults = {"method": run.config.decode.method, "beam_size": min(
      run.config.decode.beam_size, engine.limits.max_beam_size), "alpha": run.config.decode.alpha,
      "temperature": run.config.decode.temperature, "samples": 3,
      "max_beam_size": engine.limits.max_beam_size, "max_samples": engine.limits.max_samples,
      "alpha_range": ALPHA_RANGE, "temperature_range": TEMPERATURE_RANGE,
      "max_request_bytes": max_request_bytes}
  page = PAGE.read_text(encoding="utf-8").replace("{{SETTINGS}}", json.dumps(defaults))

  def error(status: int, message: str):
    return flask.jsonify(error=message), status

  @flask_app.errorhandler(BadRequest)
  def bad_request(e):
    return error(400, str(e))

  @flask_app.errorhandler(exceptions.HTTPException)
  def http_error(e):  # Werkzeug's own (404, 405, 413, malformed forms): one line, JSON.
    if isinstance(e, exceptions.RequestEntityTooLarge):
      return error(413, f"request body exceeds {max_request_bytes} bytes (--max_request_bytes).")
    return error(e.code, f"{e.name}: {e.description}")

  @flask_app.get("/")
  def index():
    return flask.Response(page, mimetype="text/html")

  @flask_app.get("/healthz")
  def healthz():
    return flask.jsonify(status="ok", step=run.step, batch_sizes=engine.batch_sizes,
                         compiled=engine.compiled(),
                         requests_per_batch=dict(sorted(engine.batch_fill.items())))

  @flask_app.post("/api/caption")
  def caption():
    request = flask.request
    settings = parse_settings(request.values, run.config.decode, engine.limits)
    upload = request.files.get("image")
    data = upload.read() if upload else request.get_data()
    if not data:
      raise BadRequest("no image: send it as the multipart field 'image' or as the body.")
    try:
      image, photo = inference.read_image(io.BytesIO(data), run.config.data.image_size,
                                          max_pixels)
    except PIL.UnidentifiedImageError as e:
      raise BadRequest("not an image (no format PIL reads).") from e
    except inference.IMAGE_ERRORS as e:  # Truncated, corrupt, too many pixels.
      reason = str(e).splitlines()[0] if str(e) else type(e).__name__
      raise BadRequest(f"not a usable image: {reason}") from e
    try:
      captions = engine.caption(image, settings)
    except RuntimeError as e:
      return error(500, str(e))
    return flask.jsonify(
        captions=captions, width=photo.width, height=photo.height, step=run.step,
        settings={"method": settings.method, "beam_size" if settings.method == "beam" else
                  "samples": settings.width, "alpha": settings.alpha,
                  "temperature": settings.temperature})

  return flask_app


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  try:
    batch_sizes = [int(b) for b in FLAGS.batch_sizes]
  except ValueError as e:
    raise app.UsageError(f"--batch_sizes={','.join(FLAGS.batch_sizes)}: give integers.") from e
  try:
    run = inference.load(FLAGS.workdir)
    engine = Captioner(run, batch_sizes, Limits(FLAGS.max_beam_size, FLAGS.max_samples))
    default = parse_settings({}, run.config.decode, engine.limits)
  except (ValueError, FileNotFoundError) as e:  # Bad flags or workdir: one line, no trace.
    raise app.UsageError(str(e)) from e
  if FLAGS.warmup:
    print(f"capflax.serve: compiling {default.method} search for batch sizes "
          f"{engine.batch_sizes} ...", flush=True)
    engine.warm_up(default)
  try:
    server = waitress.create_server(
        create_app(engine, FLAGS.max_request_bytes, FLAGS.max_pixels), host=FLAGS.host,
        port=FLAGS.port, threads=FLAGS.threads,
        max_request_body_size=2 * FLAGS.max_request_bytes)  # Flask answers first, in JSON.
  except OSError as e:  # Port taken, address not ours.
    raise app.UsageError(f"cannot listen on {FLAGS.host}:{FLAGS.port}: {e.strerror or e}") from e
  print(f"capflax.serve: {FLAGS.workdir} (step {run.step}) at "
        f"http://{FLAGS.host}:{server.effective_port}/", flush=True)
  try:
    server.run()
  except KeyboardInterrupt:
    sys.exit(0)


if __name__ == "__main__":
  cli.run(main, "capflax.serve")
