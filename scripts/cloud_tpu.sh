#!/usr/bin/env bash
# Runs capflax on a Cloud TPU VM or pod slice. `scripts/cloud_tpu.sh --help` for usage.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/cloud_tpu.sh COMMAND... [-- TRAINING_FLAGS...]

Trains capflax on a Cloud TPU VM or pod slice: every worker runs the same command and
JAX joins them into one job. COMMANDs run in the order given, e.g.
  ZONE=us-west4-a BUCKET=gs://my-bucket DATA_SRC=gs://my-bucket/flickr8k \
    scripts/cloud_tpu.sh create setup run -- --config.train.num_steps=20000

Commands:
  create   create the TPU: on demand, or with SPOT=1 a Spot TPU through a queued
           resource (waits until it is granted)
  setup    copy this checkout (without .git, .venv, caches) to every worker; install
           Python 3.11, requirements.txt and jax[tpu] there; with DATA_SRC, copy the
           data set to every worker's disk (~/capflax/data)
  run      start training on every worker, detached (nohup): each worker logs to
           ~/capflax/train.log. TRAINING_FLAGS after `--` are appended to the command.
           Rerunning it on the same WORKDIR resumes from the newest checkpoint.
  status   the TPU's state; on each worker whether training runs, and its last log line
  logs     follow the log of one worker (WORKER, default 0); Ctrl-C stops following only
  stop     send SIGTERM on every worker: the run saves a checkpoint and exits
  delete   delete the TPU (with SPOT=1, its queued resource too)

After a Spot TPU is preempted: scripts/cloud_tpu.sh delete create setup run

Environment variables:
  ZONE              zone of the TPU (required), e.g. us-west4-a, us-east5-b
  PROJECT           Google Cloud project (default: gcloud's configured one)
  TPU_NAME          TPU (and queued resource) name (default: capflax)
  ACCELERATOR_TYPE  default v5litepod-16; e.g. v4-32, v5p-16, v6e-16
  RUNTIME_VERSION   TPU software version (default: Google's base image for the
                    accelerator: v2-alpha-tpuv6e, v2-alpha-tpuv5, v2-alpha-tpuv5-lite,
                    tpu-ubuntu2204-base for v2 to v4)
  SPOT              1: Spot capacity (cheaper, preemptible) through a queued resource
  BUCKET            gs://bucket holding the workdir (required by run unless WORKDIR is set)
  WORKDIR           default $BUCKET/capflax/$TPU_NAME
  CONFIG            default configs/base.py
  DATA_SRC          gs:// folder (any layout capflax reads) that setup copies to each
                    worker; run then passes --config.data.dir=$HOME/capflax/data
  PYTHON_VERSION    default 3.11 (the version requirements.txt is verified on)
  WORKER            worker whose log `logs` follows (default 0)
  DRY_RUN           1: print the commands instead of running them
EOF
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/scripts/dry_run.sh"  # quote, quote_all, run
TPU_NAME=${TPU_NAME:-capflax}
ACCELERATOR_TYPE=${ACCELERATOR_TYPE:-v5litepod-16}
CONFIG=${CONFIG:-configs/base.py}
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
ARCHIVE=${TMPDIR:-/tmp}/capflax-$TPU_NAME.tar.gz
# On each worker everything lives in ~/capflax: src/ (this checkout), venv/, data/,
# train.log, and train.pid (the training process, which RUNNING tests for).
RUNNING='kill -0 "$(cat ~/capflax/train.pid 2>/dev/null)" 2>/dev/null'

die() { echo "cloud_tpu.sh: $*" >&2; exit 1; }


default_runtime() {  # https://cloud.google.com/tpu/docs/runtimes, for PyTorch and JAX.
  case $1 in
    v6e-*) echo v2-alpha-tpuv6e ;;
    v5p-*) echo v2-alpha-tpuv5 ;;
    v5litepod-*) echo v2-alpha-tpuv5-lite ;;
    v2-*|v3-*|v4-*) echo tpu-ubuntu2204-base ;;
    *) die "no default RUNTIME_VERSION for ACCELERATOR_TYPE=$1; set RUNTIME_VERSION." ;;
  esac
}

location() {  # --zone [--project]: the arguments every gcloud command here takes.
  LOCATION=(--zone="$ZONE")
  if [[ -n ${PROJECT:-} ]]; then LOCATION+=(--project="$PROJECT"); fi
}

on_workers() {  # on_workers WORKER COMMAND: runs a shell command on the TPU's workers.
  run gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${LOCATION[@]}" --worker="$1" --command="$2"
}

wait_until_granted() {  # A queued resource is granted when capacity frees up.
  local state
  while true; do
    state=$(run gcloud compute tpus queued-resources describe "$TPU_NAME" "${LOCATION[@]}" \
                --format='value(state.state)')
    if [[ -n ${DRY_RUN:-} ]]; then echo "$state"; return; fi
    case $state in
      ACTIVE) return ;;
      FAILED|SUSPENDED) die "queued resource $TPU_NAME is $state; run delete, then create." ;;
    esac
    echo "queued resource $TPU_NAME: $state; checking again in 60 s" >&2
    sleep 60
  done
}

cmd_create() {
  local runtime
  runtime=${RUNTIME_VERSION:-$(default_runtime "$ACCELERATOR_TYPE")}
  if [[ -n ${SPOT:-} ]]; then
    run gcloud compute tpus queued-resources create "$TPU_NAME" "${LOCATION[@]}" \
        --node-id="$TPU_NAME" --accelerator-type="$ACCELERATOR_TYPE" \
        --runtime-version="$runtime" --spot
    wait_until_granted
  else
    run gcloud compute tpus tpu-vm create "$TPU_NAME" "${LOCATION[@]}" \
        --accelerator-type="$ACCELERATOR_TYPE" --version="$runtime"
  fi
}

cmd_setup() {
  local jax_version
  jax_version=$(sed -n 's/^jax==//p' "$REPO/requirements.txt")
  [[ -n $jax_version ]] || die "$REPO/requirements.txt: no jax==VERSION line."
  run tar -czf "$ARCHIVE" -C "$REPO" --exclude=.git --exclude=.venv --exclude=__pycache__ \
      --exclude=.pytest_cache --exclude=.ruff_cache --exclude='./workdir*' .
  run gcloud compute tpus tpu-vm scp "$ARCHIVE" "$TPU_NAME:capflax-src.tar.gz" \
      "${LOCATION[@]}" --worker=all
  run rm "$ARCHIVE"
  local script="set -e; rm -rf ~/capflax/src; mkdir -p ~/capflax/src"
  script+="; tar -xzf ~/capflax-src.tar.gz -C ~/capflax/src; rm ~/capflax-src.tar.gz"
  # TPU images ship Python 3.10; uv fetches the Python version capflax is verified on.
  script+="; python3 -m pip install --user --quiet uv"
  script+="; ~/.local/bin/uv venv --allow-existing --python $(quote "$PYTHON_VERSION")"
  script+=" ~/capflax/venv"
  script+="; ~/.local/bin/uv pip install --python ~/capflax/venv/bin/python"
  script+=" -r ~/capflax/src/requirements.txt $(quote "jax[tpu]==$jax_version")"
  if [[ -n ${DATA_SRC:-} ]]; then
    script+="; mkdir -p ~/capflax/data"
    script+="; gcloud storage rsync --recursive $(quote "$DATA_SRC") ~/capflax/data"
  fi
  on_workers all "$script"
}

cmd_run() {
  local workdir=${WORKDIR:-}
  if [[ -z $workdir ]]; then
    [[ -n ${BUCKET:-} ]] || die "set BUCKET=gs://your-bucket (or WORKDIR) for run."
    workdir=${BUCKET%/}/capflax/$TPU_NAME
  fi
  [[ $workdir == gs://* ]] || die "WORKDIR=$workdir: use a gs:// path; every worker writes \
to it, and it must outlive the TPU."
  local flags
  flags=$(quote_all "--config=$CONFIG" "--workdir=$workdir")
  if [[ -n ${DATA_SRC:-} ]]; then flags+=' --config.data.dir="$HOME/capflax/data"'; fi
  if (( ${#TRAINING_FLAGS[@]} )); then flags+=" $(quote_all "${TRAINING_FLAGS[@]}")"; fi
  local script="if $RUNNING"
  script+='; then echo "$(hostname): already running" >&2; exit 1; fi; cd ~/capflax/src'
  script+="; nohup ~/capflax/venv/bin/python -m capflax.main $flags"
  script+=' >> ~/capflax/train.log 2>&1 < /dev/null & echo $! > ~/capflax/train.pid'
  on_workers all "$script"
}

cmd_status() {
  if [[ -n ${SPOT:-} ]]; then
    run gcloud compute tpus queued-resources describe "$TPU_NAME" "${LOCATION[@]}" \
        --format='value(state.state)'
  fi
  run gcloud compute tpus tpu-vm describe "$TPU_NAME" "${LOCATION[@]}" \
      --format='value(state,health,acceleratorType)'
  local script="if $RUNNING; then s=running; else s=stopped; fi"
  script+='; echo "$(hostname): $s; $(tail -n 1 ~/capflax/train.log 2>/dev/null)"'
  on_workers all "$script"
}

cmd_logs() {
  on_workers "${WORKER:-0}" "tail -n 100 -F ~/capflax/train.log"
}

cmd_stop() {
  local script="if $RUNNING"
  script+='; then kill -TERM "$(cat ~/capflax/train.pid)"; echo "$(hostname): sent SIGTERM"'
  script+='; else echo "$(hostname): not running"; fi'
  on_workers all "$script"
}

cmd_delete() {
  if [[ -n ${SPOT:-} ]]; then
    run gcloud compute tpus queued-resources delete "$TPU_NAME" "${LOCATION[@]}" --force --quiet
  else
    run gcloud compute tpus tpu-vm delete "$TPU_NAME" "${LOCATION[@]}" --quiet
  fi
}

COMMANDS=()
TRAINING_FLAGS=()
while (( $# )); do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --) shift; TRAINING_FLAGS=("$@"); break ;;
    create|setup|run|status|logs|stop|delete) COMMANDS+=("$1") ;;
    *) die "unknown command '$1' (see --help)." ;;
  esac
  shift
done
(( ${#COMMANDS[@]} )) || { usage >&2; exit 2; }
[[ -n ${ZONE:-} ]] || die "set ZONE, the TPU's zone (e.g. ZONE=us-west4-a)."
location
for command in "${COMMANDS[@]}"; do
  "cmd_$command"
done
