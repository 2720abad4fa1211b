"""scripts/check_docs.py: the README and docs/ agree with the code, and the checker finds
what a rename breaks."""

import json
import subprocess
import sys
import textwrap

import pytest

from scripts import check_docs
from tests.conftest import REPO

COMMANDS = ("capflax.main", "capflax.evaluate", "capflax.predict", "capflax.sweep",
            "capflax.report", "capflax.data.check", "capflax.serve", "scripts/benchmark.py")


def problems(text: str, name: str = "X.md") -> list[str]:
  return check_docs.Checker().run({name: textwrap.dedent(text)})


def test_readme_and_docs_agree_with_the_code():
  files = {"README.md": (REPO / "README.md").read_text()}
  files |= {f"docs/{p.name}": p.read_text() for p in sorted((REPO / "docs").glob("*.md"))}
  checker = check_docs.Checker()
  assert checker.run(files) == []
  # It read what is there: every kind of check ran many times.
  assert checker.counts["commands"] >= 30 and checker.counts["flags"] >= 80
  assert checker.counts["fields"] >= 150 and checker.counts["paths"] >= 100


def test_the_command_line_exits_nonzero_on_a_problem(tmp_path):
  bad = tmp_path / "bad.md"
  bad.write_text("```bash\npython -m capflax.evaluate --workdir=W --beam_width=4\n```\n")
  out = subprocess.run([sys.executable, "scripts/check_docs.py", str(bad)], cwd=REPO,
                       capture_output=True, text=True)
  assert out.returncode == 1
  assert out.stdout.splitlines()[0].endswith(
      "bad.md:2: capflax.evaluate has no flag --beam_width")
  good = subprocess.run([sys.executable, "scripts/check_docs.py"], cwd=REPO,
                        capture_output=True, text=True)
  assert good.returncode == 0, good.stdout


def test_renamed_flags_modules_and_values_in_code_blocks():
  assert problems("""
      ```bash
      python -m capflax.evaluate --workdir=W --beam_width=4 --nometeor
      python -m capflax.evaluatee --workdir=W
      python -m capflax.predict --workdir=W --method=beems --beam_size=three x.jpg
      python -m capflax.data.check \\
          --data_dir=D --min_cnt=5
      cd ~/src && nohup ~/venv/bin/python -m capflax.main --config=configs/demo.py \\
          --workdir=W --bogus=1 >> log 2>&1
      python scripts/benchmark.py --only=decode --repeat=3
      python scripts/nope.py
      ```
      """) == [
          "X.md:3: capflax.evaluate has no flag --beam_width",
          "X.md:4: no module capflax.evaluatee (python -m capflax.evaluatee)",
          "X.md:5: capflax.predict --method=beems: not a valid enum (one of greedy, beam, sample)",
          "X.md:5: capflax.predict --beam_size=three: not a valid integer",
          "X.md:6: capflax.data.check has no flag --min_cnt",
          "X.md:8: capflax.main has no flag --bogus",
          "X.md:10: scripts/benchmark.py has no flag --repeat",
          "X.md:11: no script scripts/nope.py"]


def test_config_overrides_are_fields_of_the_named_config():
  assert problems("""
      ```bash
      python -m capflax.main --config=configs/base.py --workdir=W --config.train.batchsize=8
      python -m capflax.main --config=configs/demo.py:tiny --workdir=W --config.train.num_steps=many
      python -m capflax.main --config=configs/nope.py --workdir=W --config.seed=1
      python -m capflax.main --config=configs/from_record.py:/a/run.json --config.mesh.fsdp=2
      python scripts/benchmark.py --config.model.decoder.widht=8
      ```
      """) == [
          "X.md:3: --config.train.batchsize: configs/base.py has no field train.batchsize "
          "(did you mean train.batch_size?)",
          "X.md:4: --config.train.num_steps=many: train.num_steps is a int in configs/demo.py:tiny",
          "X.md:5: no such file or folder: configs/nope.py",
          "X.md:5: --config.seed: no config file configs/nope.py",
          # A config built from a placeholder path is checked against configs/demo.py.
          "X.md:7: --config.model.decoder.widht: configs/demo.py has no field "
          "model.decoder.widht (did you mean model.decoder.width?)"]


def test_launch_scripts_commands_variables_and_training_flags():
  assert problems("""
      ```bash
      ZONE=a SPOT=1 scripts/cloud_tpu.sh create setup run -- --config.train.num_steps=10
      ZONEX=a scripts/cloud_tpu.sh creat
      WORKDIR=/w scripts/gpu_host.sh run -- --config.data.dirr=/d
      WORKDIR=/w sbatch --nodes=4 scripts/slurm_gpu.sbatch --config.data.dir=/d --oops
      ```
      """) == [
          "X.md:4: scripts/cloud_tpu.sh knows no environment variable ZONEX",
          "X.md:4: scripts/cloud_tpu.sh has no command creat (it has create, delete, logs, run, "
          "setup, status, stop)",
          "X.md:5: --config.data.dirr: configs/base.py has no field data.dirr (did you mean "
          "data.dir?)",
          "X.md:6: capflax.main has no flag --oops"]


def test_prose_flags_fields_paths_and_links():
  assert problems("""
      # Title

      ## A section

      Set `--beam_width` or `--beam_size`, `train.batchsize` or `train.batch_size`, and
      `config.data.dirr`; see `configs/nope.py`, `docs/config.md`, `capflax/train.py`,
      `docs/scaling_cpu_{loss_vs_compute,cider_d_vs_params}.png`, [a link](#a-section),
      [another](#nowhere), [a file](docs/missing.md) and [a heading
      there](docs/config.md#nowhere). A command in prose: `capflax.evaluate
      --beam_widht`.

      | field | meaning |
      |---|---|
      | `optim.lrr` | no such field |
      | `configs/base.py --config.model.encoder.variant=L/16 --config.model.encoder.varient=L` | |
      """) == [
          "X.md:6: --beam_width is a flag of no capflax command",
          "X.md:6: `train.batchsize`: no shipped config has a field train.batchsize (did you "
          "mean train.batch_size?)",
          "X.md:7: `config.data.dirr`: no shipped config has a field data.dirr (did you mean "
          "data.dir?)",
          "X.md:7: no such file or folder: configs/nope.py",
          "X.md:10: capflax.evaluate has no flag --beam_widht",
          "X.md:15: `optim.lrr`: no shipped config has a field optim.lrr (did you mean "
          "optim.lr?)",
          "X.md:16: --config.model.encoder.varient: configs/base.py has no field "
          "model.encoder.varient (did you mean model.encoder.variant?)",
          "X.md:9: broken link: #nowhere (no such heading in X.md)",
          "X.md:9: broken link: docs/missing.md",
          "X.md:10: broken link: docs/config.md#nowhere (no such heading in docs/config.md)"]


def test_the_config_reference_must_name_every_field():
  text = (REPO / "docs" / "config.md").read_text()
  assert problems(text, "docs/config.md") == []
  lines = [line for line in text.splitlines()
           if not line.startswith(("| `train.keep_every`", "| `mesh.fsdp_min_size`"))]
  assert problems("\n".join(lines), "docs/config.md") == [
      "docs/config.md: the config reference misses 2 field(s): mesh.fsdp_min_size, "
      "train.keep_every"]


def test_flags_read_from_source_are_the_flags_absl_defines():
  """The reference: run each command's module as __main__ (app.run stubbed out) and read
  the flags it really defines."""
  child = textwrap.dedent("""
      import json, runpy, sys
      from absl import app, flags
      app.run = lambda *args, **kwargs: None
      out, repo = {}, sys.argv[1]
      for target in sys.argv[2:]:
        before = set(flags.FLAGS)
        if target.endswith(".py"):
          sys.argv[0] = f"{repo}/{target}"  # Who absl says defined the program's flags.
          runpy.run_path(target, run_name="__main__")
        else:
          runpy.run_module(target, run_name="__main__", alter_sys=True)
        added = set(flags.FLAGS) - before
        # Ours: defined by the program itself or by a repository module (not by jax, TF, ...).
        owner = {f.name: module for module, defined in flags.FLAGS.flags_by_module_dict().items()
                 for f in defined}
        out[target] = sorted(n for n in added if owner[n].endswith(".py")  # The program.
                             or owner[n].split(".")[0] in ("capflax", "configs", "scripts"))
        for name in added:
          delattr(flags.FLAGS, name)
      print(json.dumps(out))
      """)
  result = subprocess.run([sys.executable, "-c", child, str(REPO), *COMMANDS], cwd=REPO,
                          capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu",
                               "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
  real = json.loads(result.stdout.strip().splitlines()[-1])
  for target in COMMANDS:
    path = str(REPO / target) if target.endswith(".py") else check_docs._module_file(target)
    assert sorted(check_docs.flags_of(path)) == real[target], target
  assert "beam_size" in real["capflax.evaluate"] and "config" in real["capflax.main"]


def test_flag_names_from_module_constants_and_unreadable_ones(tmp_path):
  program = tmp_path / "program.py"
  program.write_text(textwrap.dedent("""
      from absl import flags
      ACCEPT = "--accept_changes"
      METHODS = ("greedy", "beam")
      flags.DEFINE_bool(ACCEPT.lstrip("-"), False, "help")
      flags.DEFINE_enum("method", None, METHODS, "help")
      """))
  found = check_docs.flags_of(str(program))
  assert sorted(found) == ["accept_changes", "method"]
  assert found["method"].enum_values == ("greedy", "beam")
  program.write_text("from absl import flags\nflags.DEFINE_bool(name(), False, 'help')\n")
  check_docs._Source.cache.clear()
  with pytest.raises(check_docs.UnreadableFlag, match=r"program.py:2: cannot read this flag"):
    check_docs.flags_of(str(program))


def test_the_readme_contents_link_every_section_and_page():
  pages = sorted(p.name for p in (REPO / "docs").glob("*.md") if p.name != "code.md")
  text = "**Contents**: [A](#a)\n\n## A\n\n" + " ".join(
      f"[{p}](docs/{p})" for p in pages) + "\n\n## B\n"
  assert problems(text, "README.md") == [
      "README.md:7: section #b is not in the contents",
      "README.md: docs/code.md is linked from nowhere in the README"]
