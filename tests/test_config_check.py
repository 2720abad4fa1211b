"""config_check.check: every rule's one line, and names taken from the tables that own them."""

import pytest

from capflax import config_check, decode, objectives, optim
from capflax.errors import ConfigError
from capflax.models import encoders
from configs import base, base_scst, bit_r50, demo, demo_scst, vit_b16


def _with(**flat):
  config = demo.get_config("tiny")
  for key, value in flat.items():
    *parents, leaf = key.split("__")
    node = config
    for p in parents:
      node = node[p]
    with node.ignore_type():
      node[leaf] = value
  return config


def test_shipped_configs_pass():
  for config in (demo.get_config(), demo.get_config("tiny"), demo.get_config("scenes"),
                 base.get_config()):
    config_check.check(config)
  for config in (demo_scst.get_config(), demo_scst.get_config("scenes"),
                 base_scst.get_config()):  # They fine-tune a run:
    with pytest.raises(ConfigError, match=r"^config.init_from_workdir is empty, "
                       r"but train.objective='scst' fine-tunes a trained captioner"):
      config_check.check(config)
    config.init_from_workdir = "/runs/w1"
    config_check.check(config)
  after_vit = base_scst.get_config("vit_b16")  # Its parent gives the pretrained encoder.
  after_vit.init_from_workdir = "/runs/vit_b16"
  config_check.check(after_vit)


@pytest.mark.parametrize("flat, message", [
    ({"train__batch_size": 0}, "config.train.batch_size=0: must be >= 1."),
    ({"train__log_every": 0}, "config.train.log_every=0: must be >= 1."),
    ({"train__eval_every": -2}, "config.train.eval_every=-2: must be >= 1."),
    ({"eval__batch_size": 0}, "config.eval.batch_size=0: must be >= 1."),
    ({"data__train_fraction": 0.0}, "config.data.train_fraction=0.0: must be in (0, 1]."),
    ({"optim__end_lr_fraction": 1.5}, "config.optim.end_lr_fraction=1.5: must be in [0, 1]."),
    ({"optim__lr": float("nan")}, "config.optim.lr=nan: must be a finite number."),
    ({"train__batch_size": "8"}, "config.train.batch_size='8': must be an int."),
    ({"model__remat": 1}, "config.model.remat=1: must be a bool."),
    ({"optim__schedule": "cos"},
     "config.optim.schedule='cos': unknown; allowed: 'cosine', 'linear', 'rsqrt', 'constant'."),
    ({"data__layout": "kagle"}, "config.data.layout='kagle': unknown; allowed: '' (detect), "
     "'karpathy', 'original', 'kaggle' or 'tfds:NAME'."),
    ({"data__image_size": 20}, "config.data.image_size=20 is not a multiple of the ViT patch "
     "size 8 (config.model.encoder.patch_size)."),
    ({"model__decoder__num_heads": 3},
     "config.model.decoder.width=16 is not divisible by config.model.decoder.num_heads=3."),
    ({"train__num_steps": 0}, "config.train.num_steps and config.train.num_epochs are both 0: "
     "set one > 0."),
    ({"data__split_fractions": {"train": 2.0}}, "config.data.split_fractions={'train': 2.0}: "
     "must map split names to fractions in [0, 1], not all 0."),
    ({"model__encoder__variant": "B/x"}, "config.model.encoder.variant: unknown ViT variant "
     "'B/x'; expected e.g. 'B/16' with size in ['B', 'L', 'S', 'So400m', 'Ti', 'g-opt']."),
])
def test_each_bad_value_is_one_line_naming_key_value_and_what_it_may_be(flat, message):
  with pytest.raises(ConfigError) as error:
    config_check.check(_with(**flat))
  assert str(error.value) == message


def test_unknown_keys_get_the_nearest_known_one():
  config = demo.get_config("tiny")
  config.unlock()
  config.train.batch_sise = 8
  with pytest.raises(ConfigError, match=r"^config.train.batch_sise: unknown key; did you mean "
                     r"train.batch_size\?$"):
    config_check.check(config)


def test_names_come_from_their_tables(monkeypatch):
  """A new encoder, decode method or schedule is allowed without touching config_check."""
  config = _with(decode__method="nucleus")
  with pytest.raises(ConfigError, match="'nucleus': unknown; allowed: 'greedy', 'beam'"):
    config_check.check(config)
  monkeypatch.setitem(decode.METHODS, "nucleus", decode.METHODS["sample"])
  monkeypatch.setattr(optim, "SCHEDULES", optim.SCHEDULES + ("step",))
  monkeypatch.setitem(encoders.REGISTRY, "newnet", encoders.REGISTRY["vit"])
  monkeypatch.setitem(objectives.OBJECTIVES, "mle", objectives.OBJECTIVES["xe"])
  allowed = config_check._names()
  assert "nucleus" in allowed["decode.method"] and "step" in allowed["optim.schedule"]
  assert "mle" in allowed["train.objective"] and allowed["scst.baseline"] == ("mean", "greedy")
  assert "newnet" in allowed["model.encoder.name"]


def test_the_starting_weights_come_from_one_place():
  config = _with(init_from_workdir="/runs/w1", model__encoder__init_from="/weights.npz")
  with pytest.raises(ConfigError, match=r"^config.model.encoder.init_from='/weights.npz' and "
                     r"config.init_from_workdir='/runs/w1': both give the starting weights; "
                     r"set one.$"):
    config_check.check(config)


def test_scst_samples_from_images_not_stored_encoder_tokens():
  config = _with(train__objective="scst", data__cache_features=True)
  with pytest.raises(ConfigError, match=r"^config.data.cache_features=True: "
                     r"train.objective='scst' samples from the images"):
    config_check.check(config)


def test_pretrained_configs_need_their_checkpoint():
  for get in (vit_b16.get_config, bit_r50.get_config):
    config = get()
    with pytest.raises(ConfigError, match="init_from is empty, but this config fine-tunes"):
      config_check.check(config)
    config.model.encoder.init_from = "/weights.npz"
    config_check.check(config)
    config.model.encoder.update(init_from="", pretrained=False)  # From scratch, deliberately.
    config_check.check(config)


def test_an_older_saved_config_gets_the_newer_fields_defaults():
  saved = demo.get_config("tiny").to_dict()
  del saved["model"]["encoder"]["pretrained"]
  completed = config_check.complete(saved)
  assert completed.model.encoder.pretrained is False
  config_check.check(completed)
