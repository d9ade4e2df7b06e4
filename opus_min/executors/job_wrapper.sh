#!/usr/bin/env bash
# Runs one opus_min service script. Job parameter values reach the script only as environment
# variables named after the parameters; nothing in this file is generated from them.
# OPUS_META, OPUS_SCRIPT, OPUS_SERVICE and OPUS_JOB_DIR are set by the executor.
set -o errtrace

opus_error() {
  printf '%s\n' "$1" > "$OPUS_META/error"
}

# As in OPUS, any failing command of the service script ends the job in ERROR, naming it.
trap 'rc=$?; opus_error "Error in $OPUS_SERVICE running command: $BASH_COMMAND (exit status $rc)"; exit $rc' ERR
for sig in HUP INT QUIT TERM; do
  # shellcheck disable=SC2064
  trap "opus_error \"Early termination in \$OPUS_SERVICE (signal $sig received)\"; exit 143" "$sig"
done

cd "$OPUS_JOB_DIR" || exit 1
# shellcheck disable=SC1090
source "$OPUS_SCRIPT"
trap - ERR
exit 0
