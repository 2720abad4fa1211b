"""Caption metrics matching coco-caption (PTB tokens, BLEU, ROUGE-L, CIDEr-D), without Java."""

from capflax.metrics.scores import compute_scores

__all__ = ["compute_scores"]
