"""Public image-encoder checkpoints by name: where each lives and what it is.

`scripts/fetch_weights.sh NAME DIR` copies one; the README's weights table lists them.
Parameter counts are the image tower's as capflax builds it (no pooling head, no
projection, no classifier), at the checkpoint's resolution; the tests pin them against
the reference implementations' own counts (tests/models/fixtures/encoders/param_counts.json).

    python capflax/models/weights.py            # every name
    python capflax/models/weights.py NAME       # "URL FILE" for one
"""

import dataclasses
import sys

_BV = "https://storage.googleapis.com/big_vision"  # = gs://big_vision
_HF = "https://huggingface.co/openai"


@dataclasses.dataclass(frozen=True)
class Weights:
  url: str
  encoder: str  # A key of capflax.models.encoders.REGISTRY.
  variant: str
  resolution: int  # Pixels per side the weights were trained at.
  params: int
  config: str  # The config (and flags) that trains a captioner from them.

  @property
  def file(self) -> str:
    """The local file name: the URL's, except for HF's generic `model.safetensors`."""
    parts = self.url.split("/")
    return f"{parts[-4]}.safetensors" if parts[-1] == "model.safetensors" else parts[-1]


def _siglip(path, variant, res, params, config=""):
  default = {"B/16": "configs/siglip_b16.py", "So400m/14": "configs/siglip_so400m.py"}
  config = config or (f"{default[variant]}:{res}" if variant in default else
                      f"configs/siglip_b16.py:{res} --config.model.encoder.variant={variant}")
  return Weights(f"{_BV}/{path}", "siglip", variant, res, params, config)


def _clip(repo, variant, res, params, config):
  return Weights(f"{_HF}/{repo}/resolve/main/model.safetensors", "clip", variant, res, params,
                 config)


WEIGHTS: dict[str, Weights] = {
    # SigLIP (big_vision README / SigLIP_demo.ipynb), WebLI English.
    "siglip_b16_224": _siglip("siglip/webli_en_b16_224_63724782.npz", "B/16", 224, 85_797_120),
    "siglip_b16_256": _siglip("siglip/webli_en_b16_256_60500360.npz", "B/16", 256, 85_843_200),
    "siglip_b16_384": _siglip("siglip/webli_en_b16_384_68578854.npz", "B/16", 384, 86_088_960),
    "siglip_b16_512": _siglip("siglip/webli_en_b16_512_68580893.npz", "B/16", 512, 86_433_024),
    "siglip_l16_256": _siglip("siglip/webli_en_l16_256_60552751.npz", "L/16", 256, 303_361_024),
    "siglip_l16_384": _siglip("siglip/webli_en_l16_384_63634585.npz", "L/16", 384, 303_688_704),
    "siglip_so400m14_224": _siglip("siglip/webli_en_so400m_224_57633886.npz", "So400m/14", 224,
                                   412_442_352),
    "siglip_so400m14_384": _siglip("siglip/webli_en_so400m_384_58765454.npz", "So400m/14", 384,
                                   412_987_248),
    # SigLIP 2 (big_vision configs/proj/image_text/README_siglip2.md), fixed resolution.
    "siglip2_b16_224": _siglip("siglip2/siglip2_b16_224.npz", "B/16", 224, 85_797_120),
    "siglip2_b16_256": _siglip("siglip2/siglip2_b16_256.npz", "B/16", 256, 85_843_200),
    "siglip2_b16_384": _siglip("siglip2/siglip2_b16_384.npz", "B/16", 384, 86_088_960),
    "siglip2_b16_512": _siglip("siglip2/siglip2_b16_512.npz", "B/16", 512, 86_433_024),
    "siglip2_b32_256": _siglip("siglip2/siglip2_b32_256.npz", "B/32", 256, 87_465_216),
    "siglip2_l16_256": _siglip("siglip2/siglip2_l16_256.npz", "L/16", 256, 303_361_024),
    "siglip2_l16_384": _siglip("siglip2/siglip2_l16_384.npz", "L/16", 384, 303_688_704),
    "siglip2_l16_512": _siglip("siglip2/siglip2_l16_512.npz", "L/16", 512, 304_147_456),
    "siglip2_so400m14_224": _siglip("siglip2/siglip2_so400m14_224.npz", "So400m/14", 224,
                                    412_442_352),
    "siglip2_so400m14_384": _siglip("siglip2/siglip2_so400m14_384.npz", "So400m/14", 384,
                                    412_987_248),
    "siglip2_so400m16_256": _siglip("siglip2/siglip2_so400m16_256.npz", "So400m/16", 256,
                                    412_649_712),
    "siglip2_so400m16_384": _siglip("siglip2/siglip2_so400m16_384.npz", "So400m/16", 384,
                                    413_018_352),
    "siglip2_so400m16_512": _siglip("siglip2/siglip2_so400m16_512.npz", "So400m/16", 512,
                                    413_534_448),
    "siglip2_g-opt16_256": _siglip("siglip2/siglip2_g-opt16_256.npz", "g-opt/16", 256,
                                   1_134_838_272),
    "siglip2_g-opt16_384": _siglip("siglip2/siglip2_g-opt16_384.npz", "g-opt/16", 384,
                                   1_135_329_792),
    # OpenAI CLIP, the safetensors files of the Hugging Face hub's openai/* repositories.
    "clip_b32": _clip("clip-vit-base-patch32", "B/32", 224, 87_456_000,
                      "configs/clip_b16.py --config.model.encoder.variant=B/32"),
    "clip_b16": _clip("clip-vit-base-patch16", "B/16", 224, 85_799_424, "configs/clip_b16.py"),
    "clip_l14": _clip("clip-vit-large-patch14", "L/14", 224, 303_179_776,
                      "configs/clip_b16.py --config.model.encoder.variant=L/14"),
    "clip_l14_336": _clip("clip-vit-large-patch14-336", "L/14", 336, 303_507_456,
                          "configs/clip_b16.py --config.model.encoder.variant=L/14 "
                          "--config.data.image_size=336"),
    # ViT AugReg (google-research/vision_transformer), ImageNet-21k, with its class token.
    "vit_augreg_b16_224": Weights(
        "https://storage.googleapis.com/vit_models/augreg/"
        "B_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.0-sd_0.0.npz",
        "vit", "B/16", 224, 85_798_656, "configs/vit_b16.py"),
    # BiT-M (google-research/big_transfer), ImageNet-21k.
    "bit_m_r50x1": Weights("https://storage.googleapis.com/bit_models/BiT-M-R50x1.npz", "bit",
                           "R50x1", 224, 23_500_352, "configs/bit_r50.py"),
}


def main(argv: list[str]) -> int:
  if len(argv) == 1:
    print("\n".join(WEIGHTS))
    return 0
  if argv[1] not in WEIGHTS:
    print(f"unknown checkpoint {argv[1]!r}; `scripts/fetch_weights.sh --help` lists the names.",
          file=sys.stderr)
    return 2
  w = WEIGHTS[argv[1]]
  print(w.url, w.file)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
