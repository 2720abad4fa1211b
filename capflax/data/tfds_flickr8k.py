"""Flickr8k as a TFDS dataset, for TFDS-based code (`tfds.load`, big_vision-style input).

    import tensorflow_datasets as tfds
    from capflax.data import tfds_flickr8k  # Registers 'flickr8k'.
    builder = tfds_flickr8k.Flickr8k(data_dir="~/tensorflow_datasets")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir="/path/to/flickr8k"))
    ds = builder.as_dataset(split="test")

It reads the manual download with capflax's own readers, so every layout, the official
split, and the up-front check of every caption and image are the same as in training.
capflax training itself reads the folder directly (docs/data.md).
"""

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from capflax.data import dataset

_DESCRIPTION = """Flickr8k (Hodosh, Young and Hockenmaier, 2013): 8,091 Flickr photos, five
captions each, with the official 6,000/1,000/1,000 train/dev/test split (dev is 'val')."""

_CITATION = """@article{hodosh2013framing,
  title={Framing image description as a ranking task: Data, models and evaluation metrics},
  author={Hodosh, Micah and Young, Peter and Hockenmaier, Julia},
  journal={Journal of Artificial Intelligence Research}, volume={47}, pages={853--899},
  year={2013}}"""


class Flickr8k(tfds.core.GeneratorBasedBuilder):
  """Flickr8k images with all their reference captions, from a manual download."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Official split; any of three download layouts."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """Download Flickr8k from either source and pass its folder as
  `manual_dir` (`tfds build --manual_dir=DIR`, or DownloadConfig(manual_dir=DIR)):
  * Kaggle: https://www.kaggle.com/datasets/adityajn105/flickr8k (unzip: Images/ and
    captions.txt);
  * the original University of Illinois release (request form at
    https://forms.illinois.edu/sec/1713398; unzip Flickr8k_Dataset.zip and
    Flickr8k_text.zip into one folder: Flicker8k_Dataset/ and Flickr8k_text/).
  Karpathy's dataset_flickr8k.json next to either image folder also works. Check the folder
  first with `python -m capflax.data.check --data_dir=DIR`."""

  def __init__(self, *, on_bad_example: str = "error", **kwargs):
    """on_bad_example: 'error' (stop, listing every problem) or 'skip' (log and leave out)."""
    self._on_bad_example = on_bad_example
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
            "image/filename": tfds.features.Text(),
            "captions": tfds.features.Sequence(tfds.features.Text()),
        }),
        homepage="https://hockenmaier.cs.illinois.edu/8k-pictures.html",
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    data_dir = str(dl_manager.manual_dir)
    loaded = dataset.load(data_dir)
    dataset.apply_policy(loaded.problems, self._on_bad_example, data_dir)
    return {name: self._generate_examples(records)
            for name, records in loaded.assigned.splits.items()}

  def _generate_examples(self, records):
    for r in records:
      with Image.open(r.path) as image:
        plain_jpeg = image.format == "JPEG" and image.mode == "RGB"
        # JPEG bytes go in untouched; grey, palette or alpha images are stored as RGB.
        pixels = r.path if plain_jpeg else np.asarray(image.convert("RGB"))  # [h, w, 3]
      yield r.filename, {"image": pixels, "image/filename": r.filename,
                         "captions": list(r.captions)}
