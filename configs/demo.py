"""The demo: a small ViT + Transformer decoder on the built-in synthetic data.

Sized to generate its data, compile, train and evaluate in 5.5 minutes on a quiet 2-core
CPU (README "Results"). Point it at any folder in the Kaggle Flickr8k layout with
--config.data.dir=DIR. The default trains on the easy 'shapes' set; `:scenes` trains a
BatchNorm CNN on the diagnostic 'scenes' set in 11 minutes on the same CPU: the best recipe
measured there, still short of issue 11's bars (README "Results", docs/scene.md).
"""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variants: 'tiny' (`--config=configs/demo.py:tiny`), a seconds-long smoke run for tests;
  'scenes', the diagnostic scene set with the best encoder measured on it so far."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  # A finished run's workdir: start from its newest checkpoint's weights (its EMA if it kept
  # one) and BatchNorm statistics, with a fresh optimizer, step and data position; its
  # vocab.json must equal this run's. With data.dir empty, this run reads that run's data.
  c.init_from_workdir = ""

  c.data = ml_collections.ConfigDict()
  c.data.dir = ""  # Empty: generate the synthetic data into WORKDIR/synthetic_data.
  c.data.synthetic_images = 4000
  c.data.synthetic_image_size = 128
  c.data.synthetic_seed = 0
  c.data.synthetic_set = "shapes"  # 'shapes': the first, easy set; 'scenes': the diagnostic one.
  c.data.split_fractions = {"train": 0.75, "val": 0.125, "test": 0.125}
  c.data.train_fraction = 1.0  # Train on this fraction of the train images (data scaling).
  c.data.image_size = 64
  c.data.max_len = 28  # Words per caption; longer captions are cut.
  c.data.min_count = 5
  # 'all' (image, caption) pairs per epoch; 'one' caption per image; 'group': every image once
  # with group_size of its captions, decoded against one encoding (batch_size counts images).
  c.data.captions_per_image = "all"
  c.data.group_size = 5
  c.data.layout = ""  # '' detects it: 'kaggle', 'original' (Illinois release) or 'karpathy'.
  # Or 'tfds:coco_captions': a prepared TFDS data set under tfds_data_dir ('': TFDS's default),
  # exported once to data.dir ('': WORKDIR/tfds_export) for the index-addressed pipeline.
  c.data.tfds_data_dir = ""
  c.data.on_bad_example = "error"  # 'error': list every problem and stop; 'skip': log, go on.
  # With model.encoder.frozen and no augmentation: run the encoder once per train image and
  # train the decoder from the stored tokens (WORKDIR/features/, per host).
  c.data.cache_features = False
  # Train-time augmentation, a function of (seed, example index); off by default. Captions
  # naming left or right are never flipped.
  c.data.augment = ml_collections.ConfigDict(dict(
      crop_min_area=1.0,  # Random resized crop keeping >= this fraction of the image; 1: off.
      color_jitter=0.0,  # Max relative change of brightness, contrast, saturation; 0: off.
      flip=False))  # Horizontal flip with probability 1/2.

  c.model = ml_collections.ConfigDict()
  c.model.dtype = "float32"  # Compute dtype; parameters stay float32.
  c.model.remat = False  # Recompute each Transformer block's activations in the backward pass.
  c.model.scan = False  # ViT encoder blocks as one nn.scan: stacked parameters, one compile.
  # name: 'vit' | 'resnet' (v1.5, BatchNorm) | 'bit' (ResNetV2); variant: 'B/16', '50', 'R50x1'
  # (empty for 'vit': the sizes below). init_from: a public .npz (docs/encoders.md).
  c.model.encoder = ml_collections.ConfigDict(dict(
      name="vit", variant="", width=128, depth=3, mlp_dim=512, num_heads=4, patch_size=8,
      class_token=False, num_classes=0, dropout=0.0, init_from="", frozen=False,
      # 'patch': one patch_size convolution; 'conv': 3x3 stride-2 convolutions down to the
      # patch grid, so that objects a few pixels wide are seen at full resolution.
      stem="patch",
      posemb="learned",  # 'learned' | 'sincos2d': fixed 2-D sin-cos position embedding.
      # 'cnn': channels of each stage (each halves the side), residual units per stage, and
      # extra units on the last stage (each widens a token's view by one token per side).
      widths=(32, 64, 128, 128), blocks=1, head_units=0,
      pretrained=False))  # True: init_from is required (a config that fine-tunes a checkpoint).
  c.model.decoder = ml_collections.ConfigDict(dict(
      width=128, depth=2, mlp_dim=512, num_heads=4, positions="learned", tie_embeddings=True,
      dropout=0.1))

  c.optim = ml_collections.ConfigDict(dict(
      lr=1e-3, schedule="cosine",  # After warmup: 'cosine' | 'linear' | 'rsqrt' | 'constant'
      warmup_steps=100, warmup_epochs=0.0,  # warmup_epochs > 0 replaces warmup_steps
      warmup_fraction=0.0,  # > 0 replaces both: this fraction of the training steps.
      end_lr_fraction=0.01,  # cosine, linear: final lr / lr
      b1=0.9, b2=0.98, weight_decay=0.01, grad_clip_norm=1.0, encoder_lr_mult=1.0,
      # Decayed parameters: regex searched in the path ('decoder/embed/embedding'); the default
      # takes kernels only (no norms, biases, embeddings).
      weight_decay_pattern=r"(^|/)kernel$",
      ema_decay=0.0))  # > 0: keep an EMA of the parameters and evaluate with it (e.g. 0.9999).

  c.train = ml_collections.ConfigDict(dict(
      objective="xe",  # 'xe': cross-entropy of the references; 'scst': self-critical CIDEr-D.
      batch_size=64,  # Global, over all devices and hosts (SCST: images, each sampled S times).
      num_steps=1000, num_epochs=0.0,  # num_epochs > 0 replaces num_steps
      # > 0 replaces both: the steps whose training FLOPs (XLA-counted) match it (IsoFLOP runs).
      flops_budget=0.0,
      grad_accum_steps=1,  # Micro-batches per step: the same gradient with less memory.
      label_smoothing=0.0,
      log_every=50, eval_every=500,
      curve_points=0,  # Val-loss-only points of the training curve (curve.json), evenly spaced.
      checkpoint_every=500, keep_checkpoints=2,  # Keep the newest keep_checkpoints ...
      keep_every=0,  # ... plus every step divisible by keep_every (> 0).
      profile_steps=0, profile_first_step=10,  # A profiler trace of this many steps, in workdir.
      peak_flops_per_device=0.0))  # For MFU on devices not in capflax/hardware.py.

  # Self-critical sequence training (train.objective='scst'): S samples per image, each
  # rewarded by its CIDEr-D against the image's training references (document frequencies of
  # the training references), minus a baseline: the mean of the image's other samples
  # ('mean') or its greedy caption's reward ('greedy').
  c.scst = ml_collections.ConfigDict(dict(
      num_samples=5, baseline="mean",
      bleu4_weight=0.0,  # Reward = CIDEr-D + this x BLEU-4.
      append_eos=True))  # EOS counts as a word of captions and references (ruotianluo's way).

  # Devices as a (data, fsdp) mesh; -1: the devices left over. Both axes split the batch;
  # `fsdp` also splits parameters and optimizer state: each leaf by the first rule (regex
  # searched in its path, e.g. 'params/encoder/Transformer/encoderblock_0/MlpBlock_0/Dense_0/
  # kernel' or 'opt_state/...') that matches; 'fsdp' splits its largest dimension divisible
  # by the fsdp size when it has >= fsdp_min_size elements; the rest are replicated.
  c.mesh = ml_collections.ConfigDict(dict(
      data=-1, fsdp=1, rules=(("batch_stats", "replicate"), (".*", "fsdp")),
      fsdp_min_size=2 ** 14))

  c.eval = ml_collections.ConfigDict(dict(
      batch_size=128, splits=("val", "test"), max_val_images=256, loss_batches=4, num_samples=5))
  # Caption search of evaluations in training, `capflax.evaluate` and `capflax.predict`.
  c.decode = ml_collections.ConfigDict(dict(
      method="greedy",  # 'greedy' | 'beam' | 'sample'
      beam_size=4, alpha=0.6,  # beam: width, GNMT length penalty ((5 + len) / 6) ** alpha
      max_len=0,  # Tokens generated, EOS included; 0: data.max_len + 1.
      min_len=1, no_repeat_ngram_size=0, ban_unk=True,  # every method; 1: never empty
      temperature=1.0, top_k=0, top_p=1.0))  # sample: 0 / 1.0 turn top-k / top-p off
  if variant == "scenes":
    # The best recipe measured on the scenes (docs/scene.md): a BatchNorm CNN reading the
    # 128 px images at full resolution into 16x16 tokens, three times the images, a 3x
    # learning rate and 1,300 steps; shape improves with the examples seen, not the steps.
    c.data.update(synthetic_set="scenes", synthetic_images=12000, image_size=128, max_len=36)
    c.model.encoder.update(name="cnn", widths=(32, 64, 128), blocks=0, posemb="sincos2d")
    c.optim.lr = 3e-3
    c.train.num_steps = 1300
  elif variant == "tiny":
    c.data.update(synthetic_set="scenes", synthetic_images=96, synthetic_image_size=32,
                  image_size=16, max_len=12)
    # The plain ViT layout (patch embedding, learned positions) that checkpoints carry.
    c.model.encoder.update(width=16, depth=1, mlp_dim=32, num_heads=2, patch_size=8,
                           stem="patch", posemb="learned")
    c.model.decoder.update(width=16, depth=1, mlp_dim=32, num_heads=2)
    c.train.update(batch_size=8, num_steps=6, log_every=2, eval_every=4, checkpoint_every=2,
                   keep_checkpoints=10, curve_points=3)
    c.optim.warmup_steps = 2
    c.eval.update(batch_size=16, max_val_images=16, loss_batches=1, num_samples=1)
  elif variant:
    raise ValueError(f"configs/demo.py: unknown variant {variant!r} (available: 'tiny', 'scenes').")
  return c
