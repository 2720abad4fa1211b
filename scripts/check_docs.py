"""Keeps README.md and docs/*.md in step with the code, so a renamed flag fails CI.

    python scripts/check_docs.py              # README.md and docs/*.md
    python scripts/check_docs.py FILE.md ...

In fenced code blocks and inline code it finds the commands (`python -m capflax.X ...`,
`python scripts/X.py ...`, `scripts/X.sh ...`, `sbatch scripts/X.sbatch ...`) and checks
that each module or script exists, that every `--flag` is one the command defines (its
absl flags, read from the source: module level, the `__main__` block and the functions
they call), that enum, bool and number values parse, and that every `--config.a.b`
override names a field of the config its `--config` file builds. Scripts' commands and
environment variables must appear in the script; flags after a launch script's `--` go to
`capflax.main`. Outside commands, every `--flag` must belong to some command, every
dotted config field (`train.log_every`, `config.data.dir`) must be in some shipped
config, every repository path and link must exist, every `#anchor` must be a heading,
docs/config.md must list every field of every shipped config, and the README's contents
must link each of its sections, and the README each page of docs/. Prints one line per
problem (FILE:LINE: ...) and exits 1 if there is any. It imports the configs only (no
jax): the flags are read from the source.
"""

import argparse
import ast
import dataclasses
import glob
import importlib
import os
import re
import shlex
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = "README.md"  # Its contents must link every section, and it every page of docs/.
CONFIG_REFERENCE = "docs/config.md"  # Must name every field of every shipped config.
ROOT_CONFIG = "configs/demo.py"  # Every shipped config extends it.
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}
# Repository paths are recognised by their first component.
TOP_LEVEL = ("capflax/", "configs/", "scripts/", "docs/", "tests/", ".ci/")
TOP_FILES = ("README.md", "requirements.txt", "pyproject.toml")
# Command words that are not ours: skipped (their flags are theirs).
FOREIGN = {"pip", "pip3", "tensorboard", "tfds", "gcloud", "gsutil", "ssh-add", "cd", "export",
           "git", "rm", "cp", "mkdir", "ls", "cat", "tee", "tail", "head", "kill", "echo",
           "uv", "sudo", "unzip", "tmux", "source", "java", "wget", "curl", "du", "df"}
PREFIXES = {"nohup", "time", "env", "exec"}  # Run the next word.
SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", "|&"}
REDIRECTS = {">", ">>", "<", ">&", "&>", "<<", ">|", "&>>"}
PLACEHOLDER = re.compile(r"[A-Z]|\$|<|\.\.\.")  # DIR, $HOME, <path>, ...: not literal.


@dataclasses.dataclass
class Flag:
  kind: str  # The DEFINE_ suffix: string, integer, float, bool, enum, list, config_file, ...
  enum_values: tuple = ()
  default: str | None = None  # config_file: the default config path.


@dataclasses.dataclass
class Command:
  """A program whose flags can be checked: a capflax module or a Python script."""
  name: str
  flags: dict  # name -> Flag


# --- Flags, read from source -------------------------------------------------------------


def _import_map(tree: ast.Module) -> tuple[dict, dict]:
  """(local name -> repository file, local name -> (file, name)): this file's imports of
  repository modules, and of names from them (`from capflax.resume import ACCEPT_FLAG`)."""
  names, imported = {}, {}
  for node in tree.body:
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      for alias in node.names:
        found = _module_file(f"{node.module}.{alias.name}")
        if found:
          names[alias.asname or alias.name] = found
        elif _module_file(node.module):
          imported[alias.asname or alias.name] = (_module_file(node.module), alias.name)
    elif isinstance(node, ast.Import):
      for alias in node.names:
        found = _module_file(alias.name)
        if found:
          names[alias.asname or alias.name.split(".")[0]] = found
  return names, imported


def _module_file(module: str) -> str | None:
  """The repository file of a dotted module name (a module or a package), if any."""
  base = os.path.join(REPO, *module.split("."))
  for candidate in (base + ".py", os.path.join(base, "__init__.py")):
    if os.path.isfile(candidate):
      return candidate
  return None


class _Source:
  """One parsed file: its top-level functions and imports."""
  cache: dict = {}

  def __init__(self, path: str):
    with open(path, encoding="utf-8") as f:
      try:
        self.tree = ast.parse(f.read(), path)
      except SyntaxError as e:
        raise UnreadableFlag(f"{os.path.relpath(path, REPO)}:{e.lineno}: not Python "
                             f"({e.msg}); its flags cannot be read") from None
    self.path = path
    self.functions = {n.name: n for n in self.tree.body if isinstance(n, ast.FunctionDef)}
    self.constants = {t.id: n.value for n in self.tree.body if isinstance(n, ast.Assign)
                      for t in n.targets if isinstance(t, ast.Name)}
    self.imports, self.imported = _import_map(self.tree)

  @classmethod
  def of(cls, path: str) -> "_Source":
    if path not in cls.cache:
      cls.cache[path] = cls(path)
    return cls.cache[path]


class UnreadableFlag(Exception):
  """A flag whose name the source does not give as a string or a module constant."""


STR_METHODS = ("lstrip", "rstrip", "strip", "replace", "lower", "upper")


def _value(node, source: "_Source"):
  """The value of a constant expression: a literal, a module constant (here or imported
  from a repository module), a str method of one (`ACCEPT_FLAG.lstrip("-")`), or the
  names of a table (`list(decode.METHODS)`: a dict's keys); else None."""
  try:
    return ast.literal_eval(node)
  except (ValueError, SyntaxError, TypeError):
    pass
  if isinstance(node, ast.Name):
    if node.id in source.constants:
      return _value(source.constants[node.id], source)
    if node.id in source.imported:
      file, name = source.imported[node.id]
      other = _Source.of(file)
      return _value(other.constants[name], other) if name in other.constants else None
  if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
      and node.value.id in source.imports):
    other = _Source.of(source.imports[node.value.id])
    return _value(other.constants[node.attr], other) if node.attr in other.constants else None
  if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
      and node.func.attr in STR_METHODS):
    base = _value(node.func.value, source)
    args = [_value(a, source) for a in node.args]
    if isinstance(base, str) and all(isinstance(a, str) for a in args):
      return getattr(base, node.func.attr)(*args)
  if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
      and node.func.id in ("list", "tuple") and len(node.args) == 1):
    return _value(node.args[0], source)  # `list(decode.METHODS)`: a table's names.
  if isinstance(node, (ast.List, ast.Tuple)):
    items = [_value(e, source) for e in node.elts]
    return None if None in items else items
  if isinstance(node, ast.Dict):  # As iterated: its keys.
    keys = [_value(k, source) for k in node.keys]
    return None if None in keys else keys
  return None


def _collect(source: _Source, statements, out: dict, seen: set) -> None:
  """Adds the flags that running `statements` defines, following calls to functions of
  this file and of imported repository modules."""
  for statement in statements:
    if isinstance(statement, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
      continue
    for node in ast.walk(statement):
      if not isinstance(node, ast.Call):
        continue
      func = node.func
      name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
      if name.startswith("DEFINE_") and name not in ("DEFINE_flag", "DEFINE_alias"):
        flag_name = _value(node.args[0], source) if node.args else None
        if not isinstance(flag_name, str):
          raise UnreadableFlag(f"{os.path.relpath(source.path, REPO)}:{node.lineno}: cannot "
                               f"read this flag's name; give it as a string or a module "
                               f"constant")
        kind = name[len("DEFINE_"):]
        enum_values = ()
        if kind == "enum":
          values = node.args[2] if len(node.args) > 2 else next(
              (k.value for k in node.keywords if k.arg == "enum_values"), None)
          enum_values = tuple(_value(values, source) or ()) if values is not None else ()
        default = _value(node.args[1], source) if len(node.args) > 1 else None
        out[flag_name] = Flag(kind, enum_values, default if isinstance(default, str) else None)
        continue
      target = None
      if isinstance(func, ast.Name) and func.id in source.functions:
        target = (source, func.id)
      elif (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            and func.value.id in source.imports):
        other = _Source.of(source.imports[func.value.id])
        if func.attr in other.functions:
          target = (other, func.attr)
      if target and (id(target[0]), target[1]) not in seen:
        seen.add((id(target[0]), target[1]))
        _collect(target[0], target[0].functions[target[1]].body, out, seen)


def _main_guard(node) -> bool:
  """`if __name__ == "__main__":`, which runs only in the program itself."""
  return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
          and getattr(node.test.left, "id", "") == "__name__")


def flags_of(path: str) -> dict:
  """The absl flags a program defines when run: at module level and in its `__main__`
  block, at module level in the repository modules it imports (transitively), and in the
  functions all of those call."""
  out, seen, done = {}, set(), set()
  todo = [(path, True)]
  while todo:
    file, is_program = todo.pop()
    if file in done:
      continue
    done.add(file)
    source = _Source.of(file)
    body = [n for n in source.tree.body if is_program or not _main_guard(n)]
    _collect(source, body, out, seen)
    todo += [(f, False) for f in source.imports.values()]
  return out


def absl_flags() -> set:
  """Flags every absl program accepts (--help, --log_dir, --alsologtostderr, ...)."""
  from absl import app, flags, logging  # noqa: F401  (importing them defines the flags)
  return set(flags.FLAGS) | {"help", "helpshort", "helpfull", "helpxml", "only_check_args"}


# --- Configs -------------------------------------------------------------------------------


def _flatten(config, prefix="") -> dict:
  """Dotted leaf name -> value of a ConfigDict (or dict)."""
  out = {}
  for key, value in config.items():
    name = f"{prefix}{key}"
    if hasattr(value, "items"):
      out |= _flatten(value, name + ".")
    else:
      out[name] = value
  return out


def _needs_file(path: str) -> bool:
  """Whether the config's get_config has a required argument: it reads a file it names
  (configs/from_record.py), so it cannot be built from the docs' placeholder."""
  for node in _Source.of(path).tree.body:
    if isinstance(node, ast.FunctionDef) and node.name == "get_config":
      return len(node.args.args) > len(node.args.defaults)
  return False


class Configs:
  """The fields of configs/*.py, built once each (file, argument)."""

  def __init__(self):
    self._built = {}
    if REPO not in sys.path:
      sys.path.insert(0, REPO)

  def fields(self, spec: str) -> tuple[dict | None, str]:
    """(fields, note) of `configs/x.py[:ARG]`; fields None if it is no config file.

    A config whose required argument names no existing file (configs/from_record.py's
    run record, written as a placeholder in the docs) is checked against ROOT_CONFIG,
    which every shipped config extends; it is not imported."""
    path, _, arg = spec.partition(":")
    if spec not in self._built:
      self._built[spec] = self._build(path, arg)
    return self._built[spec]

  def _build(self, path, arg):
    if not (path.endswith(".py") and os.path.isfile(os.path.join(REPO, path))):
      return None, f"no config file {path}"
    if path != ROOT_CONFIG and _needs_file(os.path.join(REPO, path)) and not os.path.exists(
        os.path.expanduser(arg)):  # configs/from_record.py:/path/to/run.json: a placeholder.
      return self.fields(ROOT_CONFIG)[0], ""
    module = importlib.import_module(path[:-3].replace("/", "."))
    config = module.get_config(arg) if arg else module.get_config()
    return _flatten(config), ""

  def shipped(self) -> dict:
    """Every field of every configs/*.py (their union), built with no argument."""
    union = {}
    for path in sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.py"), recursive=True)):
      rel = os.path.relpath(path, REPO)
      if not any(isinstance(n, ast.FunctionDef) and n.name == "get_config"
                 for n in _Source.of(path).tree.body):
        continue
      fields, _ = self.fields(rel)
      union |= fields or {}
    return union


# --- Markdown ------------------------------------------------------------------------------


@dataclasses.dataclass
class Snippet:
  line: int  # Where it starts.
  text: str  # A code block's logical line (continuations joined), inline code, a link target.


def slug(heading: str) -> str:
  """GitHub's anchor of a heading."""
  text = re.sub(r"`|\*\*|\[|\]\([^)]*\)", "", heading.strip().lower())
  return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@dataclasses.dataclass
class Parsed:
  lines: list  # Shell lines of the fenced blocks, continuations joined.
  spans: list  # Inline code.
  links: list  # Link and image targets.
  anchors: set  # Of every heading.
  sections: list  # (line, anchor) of each `##` heading.


def parse_markdown(text: str) -> Parsed:
  """Inline code and links are found per paragraph, so a span broken over two lines counts."""
  lines, spans, links, anchors, sections = [], [], [], set(), []
  fence, pending, start = None, "", 0
  paragraph: list[tuple[int, str]] = []

  def end_paragraph():
    if not paragraph:
      return
    first, joined = paragraph[0][0], "\n".join(line for _, line in paragraph)
    for pattern, out in ((r"(?<!`)`([^`]+)`(?!`)", spans), (r"\]\(([^)\s]+)\)", links)):
      for match in re.finditer(pattern, joined):
        out.append(Snippet(first + joined.count("\n", 0, match.start()),
                           " ".join(match.group(1).split())))
    paragraph.clear()

  for number, line in enumerate(text.splitlines(), 1):
    stripped = line.strip()
    if fence is None and stripped.startswith("```"):
      end_paragraph()
      fence = stripped[3:].strip().lower()
      continue
    if fence is not None:
      if stripped.startswith("```"):
        fence = None
        continue
      if fence in SHELL_LANGS:
        if not pending:
          start = number
        if stripped.endswith("\\"):
          pending += stripped[:-1] + " "
          continue
        lines.append(Snippet(start, pending + stripped))
        pending = ""
      continue
    heading = re.match(r"#{1,6}\s+(.*)", line)
    if heading:
      end_paragraph()
      anchor = slug(heading.group(1))
      anchor = anchor if anchor not in anchors else anchor + "-1"
      anchors.add(anchor)
      if line.startswith("## "):
        sections.append((number, anchor))
    elif not stripped or stripped.startswith("|"):
      end_paragraph()  # Blank lines end a paragraph; each table row is one.
      if stripped:
        paragraph.append((number, line))
        end_paragraph()
    else:
      paragraph.append((number, line))
  end_paragraph()
  return Parsed(lines, spans, links, anchors, sections)


# --- Checks --------------------------------------------------------------------------------


class Checker:
  def __init__(self):
    self.configs = Configs()
    self.builtin = absl_flags()
    self.problems: list[str] = []
    self.counts = dict(commands=0, flags=0, fields=0, paths=0)
    self._commands = {}

  def problem(self, where: str, message: str) -> None:
    self.problems.append(f"{where}: {message}")

  # Programs.

  def module(self, name: str) -> Command | None:
    if name not in self._commands:
      path = _module_file(name)
      if path and path.endswith("__init__.py"):
        path = _module_file(name + ".__main__")
      self._commands[name] = Command(name, flags_of(path)) if path else None
    return self._commands[name]

  def script(self, rel: str) -> Command:
    if rel not in self._commands:
      self._commands[rel] = Command(rel, flags_of(os.path.join(REPO, rel)))
    return self._commands[rel]

  def all_flags(self) -> set:
    """Every flag of every capflax command and Python script."""
    names = set(self.builtin)
    for path in glob.glob(os.path.join(REPO, "capflax", "**", "*.py"), recursive=True) + \
        glob.glob(os.path.join(REPO, "scripts", "*.py")):
      names |= set(flags_of(path))
    return names

  # Commands.

  def command_line(self, where: str, text: str) -> None:
    try:
      lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
      lexer.whitespace_split = True
      lexer.commenters = "#"
      tokens = list(lexer)
    except ValueError:
      return  # Not shell (an output line with a stray quote).
    simple, words = [], []
    skip = False
    for token in tokens:
      if skip:
        skip = False
      elif token in SEPARATORS:
        simple.append(words)
        words = []
      elif token in REDIRECTS:  # > FILE, >> FILE, 2>&1: the redirection and its target.
        skip = True
        if words and words[-1].isdigit():
          words.pop()
      else:
        words.append(token)
    simple.append(words)
    for words in simple:
      self.simple_command(where, words)

  def simple_command(self, where: str, words: list[str]) -> None:
    env = {}
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
      key, _, value = words.pop(0).partition("=")
      env[key] = value
    while words and words[0] in PREFIXES:
      words = words[1:]
    if words[:1] == ["nice"]:
      words = words[3:] if words[1:2] == ["-n"] else words[1:]
    if not words or words[0] in FOREIGN:
      return
    program = words[0]
    if re.fullmatch(r"capflax(\.\w+)+", program):  # Named in prose: `capflax.evaluate --x`.
      self.capflax_module(where, program, words[1:])
      return
    if re.fullmatch(r"(.*/)?python3?(\.\d+)?", program):
      if words[1:2] == ["-m"] and len(words) > 2:
        if words[2].split(".")[0] == "capflax":
          self.capflax_module(where, words[2], words[3:])
      elif len(words) > 1 and words[1].endswith(".py") and words[1].startswith(TOP_LEVEL):
        self.python_script(where, words[1], words[2:])
      return
    if program in ("sbatch", "bash"):
      rest = words[1:]
      while rest and rest[0].startswith("-"):
        rest = rest[1:]
      if rest and rest[0].startswith("scripts/"):
        self.launch_script(where, rest[0], rest[1:], env)
      return
    if re.fullmatch(r"configs/\S+\.py(:\S*)?", program) and len(words) > 1:
      # A config with overrides, as a table names one: `configs/x.py:224 --config.a.b=1`.
      self.path_like(where, program)
      self.flag_args(where, self.module("capflax.main"), words[1:], config=program)
      return
    if program.startswith("scripts/"):
      if program.endswith(".py"):
        self.python_script(where, program, words[1:])
      else:
        self.launch_script(where, program, words[1:], env)

  def capflax_module(self, where, name, args):
    self.counts["commands"] += 1
    command = self.module(name)
    if command is None:
      self.problem(where, f"no module {name} (python -m {name})")
      return
    self.flag_args(where, command, args)

  def python_script(self, where, rel, args):
    self.counts["commands"] += 1
    if not os.path.isfile(os.path.join(REPO, rel)):
      self.problem(where, f"no script {rel}")
      return
    self.flag_args(where, self.script(rel), args)

  def flag_args(self, where, command: Command, args: list[str], config: str | None = None):
    """Checks `--name[=value]` arguments against the command's flags."""
    given = dict(a[2:].partition("=")[::2] for a in args if a.startswith("--"))
    if config is None:
      config_flag = next((n for n, f in command.flags.items() if f.kind == "config_file"), None)
      config = given.get(config_flag) or (command.flags[config_flag].default if config_flag
                                          else None)
    for arg in args:
      if arg == "--":
        break
      if not arg.startswith("--"):
        self.path_like(where, arg)
        continue
      name, has_value, value = arg[2:].partition("=")
      self.counts["flags"] += 1
      head, _, field = name.partition(".")
      flag = command.flags.get(head)
      if field and flag and flag.kind == "config_file":
        self.config_field(where, f"--{name}", field, value if has_value else None, config)
        continue
      if flag is None and name.startswith("no") and getattr(
          command.flags.get(name[2:]), "kind", "") in ("bool", "boolean"):
        continue
      if flag is None:
        if name not in self.builtin:
          self.problem(where, f"{command.name} has no flag --{name}")
        continue
      if has_value:
        self.flag_value(where, command.name, name, flag, value)

  def flag_value(self, where, program, name, flag: Flag, value: str) -> None:
    if flag.kind == "config_file" or flag.kind == "string":
      self.path_like(where, value)
    if PLACEHOLDER.search(value) or not value:
      return
    ok = True
    if flag.kind == "enum":
      ok = value in flag.enum_values
    elif flag.kind in ("bool", "boolean"):
      ok = value.lower() in ("true", "false", "1", "0", "t", "f")
    elif flag.kind == "integer":
      ok = re.fullmatch(r"-?\d[\d_]*", value) is not None
    elif flag.kind == "float":
      ok = _is_float(value)
    if not ok:
      expected = f" (one of {', '.join(flag.enum_values)})" if flag.enum_values else ""
      self.problem(where, f"{program} --{name}={value}: not a valid {flag.kind}{expected}")

  def config_field(self, where, shown, field, value, config):
    self.counts["fields"] += 1
    if not config:
      self.problem(where, f"{shown}: no --config given to check the field against")
      return
    fields, note = self.configs.fields(config)
    if fields is None:
      self.problem(where, f"{shown}: {note}")
      return
    if field not in fields:
      self.problem(where, f"{shown}: {config} has no field {field}{_nearest(field, fields)}")
      return
    if value is not None and not PLACEHOLDER.search(value):
      default = fields[field]
      if isinstance(default, bool):
        ok = value.lower() in ("true", "false", "1", "0")
      elif isinstance(default, int):
        ok = re.fullmatch(r"-?\d[\d_]*", value) is not None
      elif isinstance(default, float):
        ok = _is_float(value)
      else:
        ok = True
      if not ok:
        self.problem(where, f"{shown}={value}: {field} is a {type(default).__name__} in "
                            f"{config}")

  def launch_script(self, where, rel, args, env):
    """scripts/x.sh COMMAND... [-- TRAINING_FLAGS], or an sbatch file's TRAINING_FLAGS."""
    self.counts["commands"] += 1
    path = os.path.join(REPO, rel)
    if not os.path.isfile(path):
      self.problem(where, f"no script {rel}")
      return
    with open(path, encoding="utf-8") as f:
      source = f.read()
    for key in env:  # Read by the script, or documented in its usage (DRY_RUN: a helper).
      if not re.search(rf"\b{key}\b", source):
        self.problem(where, f"{rel} knows no environment variable {key}")
    commands = set()
    for pattern in re.findall(r"^\s*([a-z][a-z|]*)\)", source, re.M):
      commands |= set(pattern.split("|"))
    if rel.endswith(".sbatch"):
      training = args  # sbatch FILE passes every argument on to training.
    else:
      training = args[args.index("--") + 1:] if "--" in args else []
      for word in args[:args.index("--")] if "--" in args else args:
        if word.startswith("-"):
          if word not in ("--help", "-h"):
            self.problem(where, f"{rel}: {word} goes after `--` (training flags)")
        elif commands and word not in commands:
          self.problem(where, f"{rel} has no command {word} "
                              f"(it has {', '.join(sorted(commands))})")
    if training:
      default = re.search(r"CONFIG=\$\{CONFIG:-([^}]+)\}", source)
      config = env.get("CONFIG") or (default.group(1) if default else None)
      self.flag_args(where, self.module("capflax.main"), training, config=config)

  # Prose.

  def inline(self, where, span: str, all_flags: set, shipped: dict) -> None:
    text = span.strip()
    if " " in text and not text.startswith("-"):
      self.command_line(where, text)  # A command: ours are checked, others' skipped.
      return
    for flag in re.findall(r"(?:^|\s)--([a-z][\w.]*)", text):
      self.counts["flags"] += 1
      head, _, field = flag.partition(".")
      if head == "config" and field:
        self.shipped_field(where, f"--{flag}", field, shipped)
      elif flag not in all_flags and not (flag.startswith("no") and flag[2:] in all_flags):
        self.problem(where, f"--{flag} is a flag of no capflax command")
    field = re.fullmatch(r"(?:config\.)?([a-z_]+(?:\.[a-z_0-9]+)+)(?:=.*)?", text)
    sections = {name.split(".")[0] for name in shipped}
    if field and field.group(1).split(".")[0] in sections and not _is_file(field.group(1)):
      self.shipped_field(where, f"`{text}`", field.group(1), shipped)
    self.path_like(where, text)

  def shipped_field(self, where, shown, field, shipped):
    self.counts["fields"] += 1
    if field not in shipped and not any(k.startswith(field + ".") for k in shipped):
      self.problem(where, f"{shown}: no shipped config has a field {field}"
                          f"{_nearest(field, shipped)}")

  def path_like(self, where, text: str) -> None:
    """A repository path (configs/x.py[:ARG], docs/y.png, capflax/z/): it must exist."""
    text = text.strip().strip("'\"")
    if " " in text or not (text.startswith(TOP_LEVEL) or text in TOP_FILES):
      return
    path = text.split(":")[0].split("#")[0].rstrip(".,")
    self.counts["paths"] += 1
    if PLACEHOLDER.search(path.replace("README", "")) and "*" not in path:
      return
    expanded = _braces(path)
    if not all(glob.glob(os.path.join(REPO, p)) for p in expanded):
      self.problem(where, f"no such file or folder: {path}")

  def link(self, where, target, anchors_of, own) -> None:
    if re.match(r"[a-z]+://|mailto:", target):
      return
    path, _, anchor = target.partition("#")
    self.counts["paths"] += 1
    base = own if not path else os.path.normpath(os.path.join(os.path.dirname(own), path))
    if path and not os.path.exists(os.path.join(REPO, base)):
      self.problem(where, f"broken link: {target}")
      return
    if anchor and base.endswith(".md") and anchor not in anchors_of(base):
      self.problem(where, f"broken link: {target} (no such heading in {base})")

  def config_reference(self, rel: str, spans: list[Snippet], shipped: dict) -> None:
    named = {re.sub(r"^config\.", "", s.text.strip()).split("=")[0] for s in spans}
    missing = sorted(k for k in shipped  # A field, or a group holding it (data.augment).
                     if not any(k == n or ("." in n and k.startswith(n + ".")) for n in named))
    if missing:
      self.problem(rel, f"the config reference misses {len(missing)} field(s): "
                        f"{', '.join(missing)}")

  def run(self, files: dict) -> list[str]:
    """Checks {repository-relative name: markdown text}; returns the problems."""
    shipped = self.configs.shipped()
    all_flags = self.all_flags()
    parsed = {rel: parse_markdown(text) for rel, text in files.items()}

    def anchors_of(rel):
      if rel not in parsed:
        with open(os.path.join(REPO, rel), encoding="utf-8") as f:
          parsed[rel] = parse_markdown(f.read())
      return parsed[rel].anchors

    for rel, page in list(parsed.items()):
      for snippet in page.lines:
        self.command_line(f"{rel}:{snippet.line}", snippet.text)
      for snippet in page.spans:
        self.inline(f"{rel}:{snippet.line}", snippet.text, all_flags, shipped)
      for snippet in page.links:
        self.link(f"{rel}:{snippet.line}", snippet.text, anchors_of, rel)
      if rel == CONFIG_REFERENCE:
        self.config_reference(rel, page.spans, shipped)
      if rel == README:
        self.readme_contents(page)
    return self.problems

  def readme_contents(self, page: Parsed) -> None:
    """The README's contents link every section, and it links every page of docs/."""
    targets = {link.text for link in page.links}
    for line, anchor in page.sections:
      if f"#{anchor}" not in targets:
        self.problem(f"{README}:{line}", f"section #{anchor} is not in the contents")
    for path in sorted(glob.glob(os.path.join(REPO, "docs", "*.md"))):
      rel = os.path.relpath(path, REPO)
      if not any(t.split("#")[0] == rel for t in targets):
        self.problem(README, f"{rel} is linked from nowhere in the README")


def _is_float(value: str) -> bool:
  try:
    float(value)
    return True
  except ValueError:
    return False


def _is_file(name: str) -> bool:
  return re.search(r"\.(py|json|md|txt|png|jpg|csv|sh|sbatch|npz|log|toml)$", name) is not None


def _braces(path: str) -> list[str]:
  """Shell brace expansion of one {a,b} group: captions_{val,test}.json."""
  match = re.search(r"\{([^{}]*,[^{}]*)\}", path)
  if not match:
    return [path]
  return [q for part in match.group(1).split(",")
          for q in _braces(path[:match.start()] + part + path[match.end():])]


def _nearest(name: str, known) -> str:
  import difflib
  close = difflib.get_close_matches(name, list(known), n=1)
  return f" (did you mean {close[0]}?)" if close else ""


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=__doc__.split("\n\n", 2)[2])
  parser.add_argument("files", nargs="*", help="Markdown files (default: README.md, docs/*.md)")
  args = parser.parse_args(argv)
  names = args.files or ["README.md"] + sorted(
      os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md")))
  files = {}
  for name in names:
    path = name if os.path.isabs(name) else os.path.join(REPO, name)
    try:
      with open(path, encoding="utf-8") as f:
        files[os.path.relpath(path, REPO)] = f.read()
    except OSError as e:
      print(f"check_docs: {name}: {e.strerror}", file=sys.stderr)
      return 1
  checker = Checker()
  try:
    problems = checker.run(files)
  except UnreadableFlag as e:
    print(f"check_docs: {e}")
    return 1
  for p in problems:
    print(p)
  c = checker.counts
  print(f"check_docs: {len(files)} file(s), {c['commands']} commands, {c['flags']} flags, "
        f"{c['fields']} config fields, {c['paths']} paths: {len(problems)} problem(s).")
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main())
