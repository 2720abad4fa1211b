"""PTB tokenisation: the PTB rules on hand-made sentences, and the exact output of
coco-caption's Java PTBTokenizer on every Flickr8k caption (when java is installed)."""

import csv
import shutil

import pytest

from capflax.metrics.ptb import tokenize
from tests.conftest import flickr8k_captions_csv

# Expected strings follow the PTB conventions (and are what CoreNLP 3.4.1 writes).
RULES = [
    ("A dog's ball isn't red.", "a dog 's ball is n't red"),  # clitics split off
    ("I'm here; you'd go; we've seen.", "i 'm here you 'd go we 've seen"),
    ("The kids cannot wait, gonna play!", "the kids can not wait gon na play"),
    ("He's gotta go", "he 's got ta go"),
    ("They're running; we'll see (maybe) [later] {now}.",  # bracket names survive coco's filter
     "they 're running we 'll see -lrb- maybe -rrb- -lsb- later -rsb- -lcb- now -rcb-"),
    ('She said "hello" and \'bye\' -- then left...', "she said hello and bye then left"),
    ("A man in Washington D.C. at 10:30 with $5.50.",
     "a man in washington d.c. at 10:30 with $ 5.50"),
    ("Mr. Smith and Dr. Who.", "mr. smith and dr. who"),  # abbreviations keep their period
    ("e.g. this, i.e. that etc.", "e.g. this i.e. that etc."),
    ("A t-shirt-wearing boy, 3.5 m tall, 1,000 people.",
     "a t-shirt-wearing boy 3.5 m tall 1,000 people"),
    ("a 2-year-old on a 4-wheeler", "a 2-year-old on a 4-wheeler"),
    ("rock 'n' roll at 5 o'clock", "rock 'n' roll at 5 o'clock"),
    ("The boys' toys", "the boys toys"),
    ("email me at a@b.com or www.google.com", "email me at a@b.com or www.google.com"),
    ("50% off #1 deal @ home, at&t", "50 % off # 1 deal @ home at & t"),
    ("x/y and/or 1/2", "x/y and/or 1/2"),
    ("Hi!!! What?!", "hi !!! what ?!"),  # runs of ! and ? are one token, not in coco's list
    ("A DOG IN A FIELD .", "a dog in a field"),
    ("caf\u00e9 na\u00efve", "caf\u00e9 na\u00efve"),
    ("it was 3. then 4.", "it was 3 then 4"),
]


@pytest.mark.parametrize("text, expected", RULES)
def test_ptb_rules(text, expected):
  assert tokenize(text) == expected


@pytest.mark.skipif(shutil.which("java") is None, reason="java is not installed")
def test_matches_the_java_ptb_tokenizer_on_every_flickr8k_caption():
  from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
  with flickr8k_captions_csv() as f:
    captions = [row["caption"] for row in csv.DictReader(f)]
  texts = captions + [text for text, _ in RULES]
  java = PTBTokenizer().tokenize({i: [{"caption": t}] for i, t in enumerate(texts)})
  mismatches = [(t, java[i][0], tokenize(t)) for i, t in enumerate(texts)
                if java[i][0] != tokenize(t)]
  assert not mismatches, mismatches[:5]
  assert len(texts) > 40_000
