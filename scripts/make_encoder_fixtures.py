"""Makes tests/models/fixtures/encoders/: tiny random encoders run by their own reference code.

Run once, by hand, never by the tests (which need none of these libraries):

    python -m venv --system-site-packages /tmp/refvenv    # jax, flax, tf from requirements.txt
    /tmp/refvenv/bin/pip install torch==2.13.0 transformers==5.24.0 pandas tqdm  # CPU torch
    # Sources, at the commits recorded in versions.json:
    #   google-research/big_vision          -> $BIG_VISION          (models/vit.py, two_towers.py)
    #   google-research/vision_transformer  -> $VISION_TRANSFORMER  (vit_jax/models_vit.py)
    #   google-research/big_transfer        -> $BIG_TRANSFER        (bit_pytorch/models.py)
    BIG_VISION=... VISION_TRANSFORMER=... BIG_TRANSFER=... /tmp/refvenv/bin/python \
        scripts/make_encoder_fixtures.py tests/models/fixtures/encoders

For each family, a weights file in the family's public format, written the way its
release is (names, layouts, dtypes), plus `<family>_io.npz`: uint8 `images`, the
reference's normalised input `pixels` (NHWC) and its output `tokens` [b, n, d], the tokens
a captioner reads. The reference reads every weights file back itself before computing,
so each file is one the reference accepts. The BiT file would be tens of MB at the
smallest width big_transfer builds (GroupNorm with 32 groups, 64x channels), so it is
stored as its names, shapes and seed (`bit_manifest.json`): the tests rebuild the same
.npz from it, with a checksum of its arrays.

Also writes `param_counts.json`: the parameter counts of the released architectures by
the reference code (HF models on the meta device, big_vision's ViT by jax.eval_shape).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

if "--help" in sys.argv or "-h" in sys.argv:
  print(__doc__)
  sys.exit(0)
OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/models/fixtures/encoders"
if missing := [k for k in ("BIG_VISION", "VISION_TRANSFORMER", "BIG_TRANSFER")
               if not os.path.isdir(os.environ.get(k, ""))]:
  sys.exit(f"make_encoder_fixtures.py: set {', '.join(missing)} to the source checkouts "
           "(see --help).")
REPOS = {k: os.environ[k] for k in ("BIG_VISION", "VISION_TRANSFORMER", "BIG_TRANSFER")}
for path in REPOS.values():
  sys.path.insert(0, path)

# pylint: disable=g-import-not-at-top,wrong-import-position
import flax
import jax
import jax.numpy as jnp
import ml_collections
import tensorflow as tf
import torch
import transformers

from big_vision import utils as bv_utils
from big_vision.models import vit as bv_vit
from big_vision.models.proj.image_text import two_towers
from big_vision.pp import ops_general as bv_ops_general  # pylint: disable=unused-import
from big_vision.pp import registry as bv_pp_registry
from vit_jax import checkpoint as vt_checkpoint
from vit_jax import models_vit
from bit_pytorch import models as bit_models

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.models import bit_weights

torch.manual_seed(0)
RNG = np.random.default_rng(0)
SIZE = 16  # Pixels per side: a 4x4 grid of 4-pixel patches.
TINY = dict(width=32, depth=2, mlp_dim=64, num_heads=2)


def images(size=SIZE, n=2):
  return RNG.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def save_io(name, imgs, pixels, tokens, **extra):
  np.savez(os.path.join(OUT, f"{name}_io.npz"), images=imgs, pixels=np.asarray(pixels, np.float32),
           tokens=np.asarray(tokens, np.float32), **extra)


def bv_pixels(imgs):
  """big_vision's own preprocessing op `value_range(-1, 1)` on uint8 images."""
  op = bv_pp_registry.Registry.lookup("preprocess_ops.value_range")(-1, 1)
  return np.stack([op({"image": tf.constant(im)})["image"].numpy() for im in imgs])


def jitter(tree, key):
  """Random values for every parameter: the inits zero some (biases, cls, LayerNorm)."""
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  return treedef.unflatten([0.5 * jax.random.normal(k, x.shape, jnp.float32) + x
                            for k, x in zip(keys, leaves)])


# ------------------------------------------------------------------ SigLIP (big_vision)


def siglip(name, *, scan, prefix, dtype, other_size):
  cfg = ml_collections.ConfigDict(dict(
      image=dict(**TINY, patch_size=(4, 4), pool_type="map", scan=scan),
      text=dict(width=32, depth=1, mlp_dim=64, num_heads=2, vocab_size=50, scan=scan),
      out_dim=16, bias_init=-10.0))
  model = two_towers.Model(**cfg)
  imgs = images()
  pixels = bv_pixels(imgs)
  params = model.init(jax.random.PRNGKey(1), pixels[:1], jnp.zeros((1, 8), jnp.int32))["params"]
  params = jitter(params, jax.random.PRNGKey(2))
  flat = {(prefix + k): np.asarray(v).astype(dtype)
          for k, v in bv_utils.tree_flatten_with_names(params)[0]}
  path = os.path.join(OUT, f"{name}.npz")
  np.savez(path, **flat)
  # big_vision reads the file back (recovering bfloat16) and computes from what it read.
  restored = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32),
                          two_towers.load(None, path, cfg))  # img, txt, t and b.
  _, _, out = model.apply({"params": restored}, pixels)
  extra = {}
  if other_size:  # big_vision's own high-resolution loading: the posemb resampled.
    big = bv_vit.Model(16, **TINY, patch_size=(4, 4), pool_type="map", scan=scan)
    big_pixels = bv_pixels(big_imgs := images(other_size))
    init = big.init(jax.random.PRNGKey(3), big_pixels[:1])["params"]
    # As bv_vit.load, in float32 (scipy's zoom takes no bfloat16).
    loaded = jax.tree.map(lambda x: np.asarray(x, np.float32),
                          bv_utils.load_params(f"{path}:img"))
    loaded["pos_embedding"] = bv_vit.resample_posemb(loaded["pos_embedding"],
                                                     init["pos_embedding"])
    _, big_out = big.apply({"params": loaded}, big_pixels)
    extra = dict(big_images=big_imgs, big_pixels=big_pixels, big_tokens=big_out["encoded"])
  save_io(name, imgs, pixels, out["img/encoded"], **extra)


# ------------------------------------------------------------------ HF SigLIP and CLIP


def hf_random(model):
  """Random values for every parameter (HF inits zero biases, set LayerNorms to 1)."""
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.5 * torch.randn_like(p))
  return model.eval()


def hf(name, model, processor, reference):
  imgs = images()
  pixels = processor(images=list(imgs), return_tensors="pt")["pixel_values"]  # NCHW
  with tempfile.TemporaryDirectory() as d:
    model.save_pretrained(d, safe_serialization=True)
    shutil.copy(os.path.join(d, "model.safetensors"), os.path.join(OUT, f"{name}.safetensors"))
    model = type(model).from_pretrained(d).eval()  # The reference reads the file back.
  with torch.no_grad():
    tokens = reference(model, pixels)
  save_io(name, imgs, pixels.permute(0, 2, 3, 1).numpy(), tokens.numpy())


def hf_siglip():
  c = transformers.SiglipConfig(
      text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, vocab_size=50, max_position_embeddings=8),
      vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, image_size=SIZE, patch_size=4))
  processor = transformers.SiglipImageProcessor(do_resize=False)
  hf("siglip_hf", hf_random(transformers.SiglipModel(c)), processor,
     lambda m, x: m.vision_model(pixel_values=x).last_hidden_state)


def hf_clip():
  c = transformers.CLIPConfig(
      text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, vocab_size=50, max_position_embeddings=8),
      vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, image_size=SIZE, patch_size=4),
      projection_dim=16)
  processor = transformers.CLIPImageProcessor(do_resize=False, do_center_crop=False)

  def reference(m, x):  # The patch tokens after CLIP's final LayerNorm (ln_post).
    v = m.vision_model
    return v.post_layernorm(v(pixel_values=x).last_hidden_state)[:, 1:]

  hf("clip", hf_random(transformers.CLIPModel(c)), processor, reference)


# ------------------------------------------------------------------ ViT AugReg


def _pre_linen(name):
  """Linen names -> the pre-linen names of the released files (one counter per block)."""
  for linen, old in (("MultiHeadDotProductAttention_0", "MultiHeadDotProductAttention_1"),
                     ("LayerNorm_1", "LayerNorm_2"), ("MlpBlock_0", "MlpBlock_3")):
    name = name.replace(f"/{linen}/", f"/{old}/")
  return name


def vision_transformer():
  model = models_vit.VisionTransformer(
      num_classes=5, patches=ml_collections.ConfigDict(dict(size=(4, 4))), hidden_size=32,
      transformer=dict(mlp_dim=64, num_heads=2, num_layers=2, attention_dropout_rate=0.0,
                       dropout_rate=0.0),
      classifier="token", representation_size=32)
  imgs = images()
  pixels = bv_pixels(imgs)  # vision_transformer's input pipeline: [-1, 1] as well.
  params = model.init(jax.random.PRNGKey(4), pixels[:1], train=False)["params"]
  params = jitter(params, jax.random.PRNGKey(5))
  flat = {_pre_linen("/".join(k)): np.asarray(v)
          for k, v in flax.traverse_util.flatten_dict(params).items()}
  path = os.path.join(OUT, "vit_augreg.npz")
  np.savez(path, **flat)
  restored = vt_checkpoint.load(path)  # Its own reader, pre-linen names converted.
  chex = jax.tree.map(np.testing.assert_array_equal, restored, jax.device_get(params))
  del chex
  _, state = model.apply({"params": restored}, pixels, train=False, capture_intermediates=True,
                         mutable=["intermediates"])
  encoded = state["intermediates"]["Transformer"]["__call__"][0]  # [b, 1 + n, d]
  save_io("vit_augreg", imgs, pixels, encoded[:, 1:])


# ------------------------------------------------------------------ BiT


def bit():
  model = bit_models.ResNetV2([2, 2, 2, 2], 1, head_size=5)  # R26x1
  names = {}  # The names bit_pytorch's load_from reads, with shapes (HWIO for convs).
  for k, v in model.state_dict().items():
    names[k] = tuple(v.shape)
  manifest = []
  for tname, shape in names.items():
    manifest.append([_bit_public(tname), list(shape[2:] + shape[1:2] + shape[:1])
                     if len(shape) == 4 else list(shape)])
  weights = bit_weights.arrays({"seed": 6, "arrays": manifest})
  path = os.path.join(OUT, "bit.npz")  # Temporary: only the manifest is kept.
  np.savez(path, **weights)
  model.load_from(np.load(path))
  for tname, value in model.state_dict().items():  # load_from set every parameter.
    want = weights[_bit_public(tname)]
    np.testing.assert_array_equal(value.numpy(), want.transpose(3, 2, 0, 1) if want.ndim == 4
                                  else want)
  imgs = images(64)
  pixels = (imgs / 255.0 - 0.5) / 0.5  # big_transfer: torchvision Normalize(0.5, 0.5).
  x = torch.from_numpy(pixels.astype(np.float32)).permute(0, 3, 1, 2).double()
  model = model.double()  # A float64 reference: what remains is our float32 rounding.
  with torch.no_grad():
    feats = model.head.relu(model.head.gn(model.body(model.root(x))))  # [b, c, h, w]
  tokens = feats.permute(0, 2, 3, 1).reshape(len(imgs), -1, feats.shape[1])
  os.remove(path)
  with open(os.path.join(OUT, "bit_manifest.json"), "w") as f:
    json.dump({"seed": 6, "arrays": manifest, "sha256": bit_weights.sha256(weights)}, f, indent=0)
  save_io("bit", imgs, pixels, tokens.numpy())


def _bit_public(tname):
  """A bit_pytorch state_dict name -> the name its load_from reads from the .npz."""
  parts = tname.split(".")
  leaf = {"weight": "gamma", "bias": "beta"}
  if parts[0] == "root":
    return "resnet/root_block/standardized_conv2d/kernel"
  if parts[0] == "head":
    return {"gn.weight": "resnet/group_norm/gamma", "gn.bias": "resnet/group_norm/beta",
            "conv.weight": "resnet/head/conv2d/kernel",
            "conv.bias": "resnet/head/conv2d/bias"}[".".join(parts[1:])]
  _, block, unit, layer, kind = parts
  if layer == "downsample":
    return f"resnet/{block}/{unit}/a/proj/standardized_conv2d/kernel"
  part = "abc"[int(layer[-1]) - 1]
  if layer.startswith("conv"):
    return f"resnet/{block}/{unit}/{part}/standardized_conv2d/kernel"
  return f"resnet/{block}/{unit}/{part}/group_norm/{leaf[kind]}"


# ------------------------------------------------------------------ parameter counts


def param_counts():
  """Image-tower parameters (no pooling head, no projection) of the released sizes."""
  counts = {}
  with torch.device("meta"):
    for name, (variant, res) in {"siglip B/16 224": ("B/16", 224), "siglip L/16 256": ("L/16", 256),
                                 "siglip So400m/14 224": ("So400m/14", 224),
                                 "siglip So400m/14 384": ("So400m/14", 384)}.items():
      patch = variant.split("/")[1]
      w = bv_vit.decode_variant(variant)
      m = transformers.SiglipVisionModel(transformers.SiglipVisionConfig(
          hidden_size=w["width"], intermediate_size=w["mlp_dim"], num_hidden_layers=w["depth"],
          num_attention_heads=w["num_heads"], image_size=res, patch_size=int(patch),
          vision_use_head=False))  # The MAP head pools; a captioner reads the patch tokens.
      hf_count = sum(p.numel() for p in m.parameters())
      bv = bv_vit.Model(None, variant=variant, pool_type="none")
      shapes = jax.eval_shape(bv.init, jax.random.PRNGKey(0), jnp.zeros((1, res, res, 3)))
      bv_count = sum(x.size for x in jax.tree.leaves(shapes["params"]))
      assert hf_count == bv_count, (name, hf_count, bv_count)
      counts[name] = bv_count
    for name, (width, depth, mlp, heads, patch, res) in {
        "clip B/32 224": (768, 12, 3072, 12, 32, 224), "clip B/16 224": (768, 12, 3072, 12, 16, 224),
        "clip L/14 224": (1024, 24, 4096, 16, 14, 224),
        "clip L/14 336": (1024, 24, 4096, 16, 14, 336)}.items():
      m = transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
          hidden_size=width, intermediate_size=mlp, num_hidden_layers=depth,
          num_attention_heads=heads, image_size=res, patch_size=patch))
      counts[name] = sum(p.numel() for p in m.parameters())
  with open(os.path.join(OUT, "param_counts.json"), "w") as f:
    json.dump(counts, f, indent=1)


def versions():
  commits = {k: subprocess.run(["git", "-C", v, "rev-parse", "HEAD"], capture_output=True,
                               text=True, check=False).stdout.strip() or "unknown"
             for k, v in REPOS.items()}
  return {"jax": jax.__version__, "flax": flax.__version__, "torch": torch.__version__,
          "transformers": transformers.__version__, "numpy": np.__version__,
          "tensorflow": tf.__version__, **{f"{k.lower()}_commit": v for k, v in commits.items()}}


if __name__ == "__main__":
  os.makedirs(OUT, exist_ok=True)
  siglip("siglip", scan=False, prefix="", dtype=np.float32, other_size=0)
  siglip("siglip2", scan=True, prefix="params/", dtype=jnp.bfloat16, other_size=24)
  hf_siglip()
  hf_clip()
  vision_transformer()
  bit()
  param_counts()
  with open(os.path.join(OUT, "versions.json"), "w") as f:
    json.dump(versions(), f, indent=1)
  print("\n".join(f"{n}: {os.path.getsize(os.path.join(OUT, n))} bytes"
                  for n in sorted(os.listdir(OUT))))
