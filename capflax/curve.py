"""Training curves as data: `WORKDIR/curve.json`, one point per evaluation during training.

A point is where the run stood (step, examples and tokens seen, training FLOPs spent so
far: the XLA-counted FLOPs per example times the examples seen) and what the val split
scored there: the teacher-forced loss always; the caption metrics (CIDEr-D, ...) and the
scene-truth scores (under "scene", on scene data) at full evaluations. Loss-only points
(`train.curve_every`) cost `eval.loss_batches` forward passes, so they can be frequent.
run.json carries the finished curve; `capflax.report` draws its envelope against compute
(Chinchilla's approach 1, `capflax.scaling_fits`).
"""

from etils import epath

from capflax import run_files

CURVE = "curve.json"


def point(step: int, examples: int, tokens: int, flops_per_example: float, val: dict) -> dict:
  return {"step": step, "examples": examples, "tokens": tokens,
          "flops": flops_per_example * examples, "val": val}


def load(workdir: epath.PathLike) -> list[dict]:
  path = epath.Path(workdir) / CURVE
  return run_files.read_json(path) if path.exists() else []


def append(workdir: epath.PathLike, new: dict) -> None:
  """Adds a point (call on process 0). Points at or after its step are dropped first: they
  were measured after the checkpoint a resumed run restarted from, and are measured again."""
  kept = [p for p in load(workdir) if p["step"] < new["step"]]
  run_files.write_json(epath.Path(workdir) / CURVE, kept + [new])
