"""coco-caption's caption tokenisation, in Python: no Java.

pycocoevalcap's `PTBTokenizer` pipes every caption through Stanford CoreNLP 3.4.1's
`PTBTokenizer -preserveLines -lowerCase` and then drops the tokens in `PUNCTUATIONS`.
`tokenize` reproduces that output: punctuation split off words and dropped, brackets
kept as `-lrb-`-style tokens (lowercased, so coco-caption's filter misses them), clitics
split (`dog's` -> `dog 's`, `don't` -> `do n't`, `cannot` -> `can not`), hyphenated
words, numbers and abbreviations (`u.s.`, `mr.`) kept whole, `&` and `=` split off.
"""

import re

# What coco-caption removes after tokenising (its `PUNCTUATIONS`, as the lexer writes them).
PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-lrb-", "-rrb-", "-lcb-", "-rcb-", ".", "?",
                          "!", ",", ":", "-", "--", "...", ";"])
# coco-caption compares the lexer's uppercase bracket names with lowercased tokens, so these
# four survive as words; the lexer also writes -lsb-/-rsb- for square brackets.
_KEPT = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
_DROPPED = frozenset(PUNCTUATIONS - {"-lrb-", "-rrb-", "-lcb-", "-rcb-"})

# Words CoreNLP keeps with their final period (a subset of its abbreviation list).
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof gen rep sen gov lt col sgt capt mt ave blvd rd etc vs inc ltd co "
    "corp dept est jan feb mar apr jun jul aug sep sept oct nov dec no".split())
# Multi-word tokens the lexer splits in two (its `SPLIT` forms).
_SPLITS = {"cannot": "can not", "gonna": "gon na", "gotta": "got ta", "wanna": "wan na",
           "lemme": "lem me", "gimme": "gim me", "dunno": "dun no"}

_A = r"[^\W_]"  # a letter or digit, in any script
_TOKEN = re.compile(rf"""
    (?P<email>{_A}[\w.+-]*@[\w-]+(?:\.[\w-]+)+)                  # a@b.com
  | (?P<domain>[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|edu|gov)\b)   # statefarm.com
  | (?P<number>[0-9]+(?:[.,:/][0-9]+)*)(?!{_A}|-{_A})            # 3.5  1,000  10:30  1/2
  | (?P<acronym>(?:{_A}\.)+)(?!{_A})                             # u.s.  a.m.  p.
  | (?P<n>'n')                                                  # rock 'n' roll
  | (?P<word>{_A}+(?:[-'/]{_A}+)*\.?)                            # t-shirt  o'clock  and/or  dr.
  | (?P<clitic>'(?:s|re|ve|ll|d|m)(?!{_A}))                     # 's (after a split word)
  | (?P<run>\.\.\.|--|[!?]+)                                     # ...  --  ?!
  | (?P<other>\S)
""", re.VERBOSE)
_NT = re.compile(r"^(?P<stem>\w+)(?P<clitic>n't)$")
_CLITIC = re.compile(r"^(?P<stem>.+?)(?P<clitic>'(?:s|re|ve|ll|d|m))$")


def _word(token: str) -> list[str]:
  """A word, its trailing period and its clitics as the lexer splits them."""
  period = []
  if token.endswith(".") and token[:-1] not in _ABBREVIATIONS:
    token, period = token[:-1], ["."]
  if token in _SPLITS:
    return _SPLITS[token].split() + period
  for pattern in (_NT, _CLITIC):
    m = pattern.match(token)
    if m:
      return [m["stem"], m["clitic"]] + period
  return [token] + period


def ptb_tokens(text: str) -> list[str]:
  """The CoreNLP PTB tokens of one line, lowercased, punctuation still in."""
  out = []
  for m in _TOKEN.finditer(text.lower()):
    kind, token = m.lastgroup, m.group()
    if kind == "word":
      out.extend(_word(token))
    elif kind == "other":
      out.append(_KEPT.get(token, "``" if token == '"' else token))
    else:
      out.append(token)
  return out


def tokenize(text: str) -> str:
  """One caption exactly as coco-caption's PTBTokenizer returns it (space-separated)."""
  return " ".join(t for t in ptb_tokens(text.replace("\n", " ")) if t not in _DROPPED)
