#!/usr/bin/env bash
# Copies one public image-encoder checkpoint (capflax/models/weights.py) into a folder.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TABLE="$HERE/../capflax/models/weights.py"
source "$HERE/dry_run.sh"

usage() {
  cat <<USAGE
Usage: scripts/fetch_weights.sh NAME DIR

Downloads checkpoint NAME to DIR/FILE with curl (resumable, progress bar; the file appears
only once complete) and prints (on stderr) the --config.model.encoder.init_from flag that reads it.
DRY_RUN=1 prints the commands instead of running them. The README's weights table gives
each checkpoint's URL, config and parameter count.

Names:
$(python3 "$TABLE" | sed 's/^/  /')
USAGE
}

if [[ ${1:-} == -h || ${1:-} == --help ]]; then usage; exit 0; fi
if [[ $# -ne 2 ]]; then usage >&2; exit 2; fi
name=$1 dir=$2
if ! found=$(python3 "$TABLE" "$name"); then exit 2; fi
read -r url file <<<"$found"
run mkdir -p "$dir"
run curl --location --fail --continue-at - --progress-bar --output "$dir/$file.part" "$url"
run mv "$dir/$file.part" "$dir/$file"
echo "--config.model.encoder.init_from=$dir/$file" >&2
