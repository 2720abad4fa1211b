"""Flickr8k research configuration: ViT-B/16 at 224 px + a 6-layer Transformer decoder.

    python -m capflax.main --config=configs/base.py --workdir=DIR \
        --config.data.dir=/path/to/flickr8k   # Kaggle layout: Images/ + captions.txt
"""

import ml_collections

from configs import demo


def get_config() -> ml_collections.ConfigDict:
  c = demo.get_config()
  c.data.update(dir="", synthetic_images=0, image_size=224, max_len=40, min_count=5,
                captions_per_image="all")
  c.model.dtype = "bfloat16"
  # The published ViT's patch embedding and learned positions: what checkpoints carry.
  c.model.encoder.update(variant="B/16", dropout=0.0, stem="patch", posemb="learned")
  c.model.decoder.update(width=512, depth=6, mlp_dim=2048, num_heads=8, positions="learned",
                         tie_embeddings=True, dropout=0.1)
  c.optim.update(lr=3e-4, warmup_steps=1000, weight_decay=0.05)
  # 30,000 training pairs / 256 = 117 steps per epoch: 20k steps is ~170 epochs of pairs.
  c.train.update(batch_size=256, num_steps=20_000, log_every=100, eval_every=2000,
                 checkpoint_every=1000, keep_checkpoints=3)
  c.eval.update(batch_size=256, max_val_images=1000, loss_batches=20, num_samples=5)
  c.decode.update(method="beam", beam_size=3, alpha=0.6)
  return c
