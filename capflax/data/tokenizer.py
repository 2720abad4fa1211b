"""Word vocabulary: the one place that turns caption text into ids and back.

Follows the Karpathy convention used by captioning papers: lowercase, punctuation is a
word separator, words seen fewer than `min_count` times in the *train* captions map to
UNK. The vocabulary is saved in the workdir so training, resume, evaluation and
prediction all use the very same ids.
"""

import collections
import json
import re
from collections.abc import Iterable

import numpy as np
from etils import epath

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
_NON_WORD = re.compile(r"[^0-9a-z]+")


def words(text: str) -> list[str]:
  """'A dog, running.' -> ['a', 'dog', 'running']."""
  return _NON_WORD.sub(" ", text.lower()).split()


class Vocabulary:
  """Bidirectional word <-> id map with the special tokens at fixed ids 0..3."""

  def __init__(self, tokens: Iterable[str]):
    self.itos = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
    self.stoi = {t: i for i, t in enumerate(self.itos)}

  def __len__(self) -> int:
    return len(self.itos)

  def __eq__(self, other) -> bool:
    return isinstance(other, Vocabulary) and self.itos == other.itos

  @classmethod
  def build(cls, captions: Iterable[str], min_count: int = 5) -> "Vocabulary":
    """Most frequent first, ties alphabetical, so the ids do not depend on input order."""
    counts = collections.Counter(w for c in captions for w in words(c))
    kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return cls(kept)

  def encode(self, text: str, max_len: int) -> np.ndarray:
    """BOS w1 .. wn EOS, truncated to `max_len` words and padded to max_len + 2."""
    ids = [self.stoi.get(w, UNK_ID) for w in words(text)][:max_len]
    out = np.full(max_len + 2, PAD_ID, np.int32)  # [max_len + 2]
    out[:len(ids) + 2] = [BOS_ID] + ids + [EOS_ID]
    return out

  def decode(self, ids: Iterable[int]) -> str:
    """Ids after BOS up to the first EOS/PAD, as a space-separated string."""
    out = []
    for i in ids:
      i = int(i)
      if i in (EOS_ID, PAD_ID):
        break
      if i != BOS_ID:
        out.append(self.itos[i])
    return " ".join(out)

  def save(self, path: epath.PathLike) -> None:
    """Atomic, like every workdir file; `path` may be local or on GCS (`gs://`)."""
    path = epath.Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"tokens": self.itos}, indent=0), encoding="utf-8")
    tmp.replace(path)

  @classmethod
  def load(cls, path: epath.PathLike) -> "Vocabulary":
    tokens = json.loads(epath.Path(path).read_text(encoding="utf-8"))["tokens"]
    if tuple(tokens[:4]) != SPECIALS:
      raise ValueError(f"{path}: not a capflax vocabulary (first tokens {tokens[:4]}).")
    return cls(tokens[4:])
