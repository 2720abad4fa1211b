#!/usr/bin/env bash
# Runs capflax on one machine with several GPUs. `scripts/gpu_host.sh --help` for usage.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/gpu_host.sh COMMAND... [-- TRAINING_FLAGS...]

Trains capflax on one machine with one or more NVIDIA GPUs: one process drives all of
them (the device mesh spans every visible GPU; choose them with CUDA_VISIBLE_DEVICES).
COMMANDs run in the order given, e.g.
  WORKDIR=/data/runs/flickr8k scripts/gpu_host.sh setup run -- \
      --config.data.dir=/data/flickr8k --config.train.batch_size=256

Commands:
  setup    create the virtualenv VENV and install requirements.txt and jax[cuda12]
           (the CUDA 12 wheels from PyPI: only the NVIDIA driver is needed on the machine)
  run      train in the foreground; TRAINING_FLAGS after `--` are appended. Detach it
           with tmux, or `nohup scripts/gpu_host.sh run > train.log 2>&1 &`. SIGTERM
           (`kill PID`) saves a checkpoint and exits; rerunning on the same WORKDIR
           resumes.

Environment variables:
  WORKDIR   local folder or gs:// path (required by run)
  CONFIG    default configs/base.py
  VENV      default .venv in the checkout
  PYTHON    interpreter for the virtualenv (default python3.11)
  JAX_EXTRA jax extra to install (default cuda12; cuda13 for CUDA 13 drivers)
  DRY_RUN   1: print the commands instead of running them
EOF
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/scripts/dry_run.sh"  # quote, quote_all, run
CONFIG=${CONFIG:-configs/base.py}
VENV=${VENV:-$REPO/.venv}
PYTHON=${PYTHON:-python3.11}
JAX_EXTRA=${JAX_EXTRA:-cuda12}

die() { echo "gpu_host.sh: $*" >&2; exit 1; }


cmd_setup() {
  local jax_version
  jax_version=$(sed -n 's/^jax==//p' "$REPO/requirements.txt")
  [[ -n $jax_version ]] || die "$REPO/requirements.txt: no jax==VERSION line."
  run "$PYTHON" -m venv "$VENV"
  run "$VENV/bin/pip" install -r "$REPO/requirements.txt" "jax[$JAX_EXTRA]==$jax_version"
}

cmd_run() {
  [[ -n ${WORKDIR:-} ]] || die "set WORKDIR (a local folder or gs:// path) for run."
  cd "$REPO"
  run "$VENV/bin/python" -m capflax.main --config="$CONFIG" --workdir="$WORKDIR" \
      ${TRAINING_FLAGS[@]+"${TRAINING_FLAGS[@]}"}
}

COMMANDS=()
TRAINING_FLAGS=()
while (( $# )); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --) shift; TRAINING_FLAGS=("$@"); break ;;
    setup|run) COMMANDS+=("$1") ;;
    *) die "unknown command '$1' (see --help)." ;;
  esac
  shift
done
(( ${#COMMANDS[@]} )) || { usage >&2; exit 2; }
for command in "${COMMANDS[@]}"; do
  "cmd_$command"
done
