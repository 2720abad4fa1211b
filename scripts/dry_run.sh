# Sourced by the launch scripts: print-or-run, so DRY_RUN=1 shows the exact commands.

quote() {  # Like Python's shlex.quote: the printed word reads back as the same argument.
  if [[ $1 =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\"\'\"\'}"
  fi
}

quote_all() {
  local words=() a
  for a in "$@"; do words+=("$(quote "$a")"); done
  printf '%s' "${words[*]}"
}

run() {  # Runs a command, or with DRY_RUN prints it (one shell-quoted line).
  if [[ -n ${DRY_RUN:-} ]]; then
    quote_all "$@"
    echo
  else
    "$@"
  fi
}
