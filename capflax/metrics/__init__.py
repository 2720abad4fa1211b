"""Caption metrics (BLEU, ROUGE-L, CIDEr-D) matching coco-caption, without Java."""

from capflax.metrics.scores import compute_scores

__all__ = ["compute_scores"]
