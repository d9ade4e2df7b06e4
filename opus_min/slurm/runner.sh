#!/usr/bin/env bash
# opus_min's runner inside a Slurm batch job: `bash runner.sh <job folder>/.opus`.
# Static (copied into each job's .opus/ at submission); nothing in it is generated.
#
# 1. Clean environment: only Slurm's SLURM_* variables survive; the job's own variables come from
#    the NUL-separated .opus/environment (`export -- "$entry"` takes each entry as data: a value is
#    never evaluated). Then the service script runs through the same wrapper as on the local
#    executor (job_wrapper.sh: ERR trap naming the failing command), in its own session.
# 2. Signals, not polling: it POSTs signed callbacks to the controller (URL and per-job tokens in
#    .opus/callback, 0600): `executing` before the script, then one of `completed`, `error`
#    (exit status, or the signal Slurm sent: scancel, time limit, preemption) or `aborted` (the
#    watchdog below). The body goes through stdin, so no token shows in `ps`.
# 3. Watchdog: with a duration > 0 it stops the script's session (TERM, KILL 2 s later) when the
#    executionDuration is over, to the second (Slurm limits are whole minutes checked every ~30 s).
# It also leaves .opus/final (what it reported) for reconcile, and .opus/reported once the
# controller answered, which tells the Slurm-side hook it has nothing to add.
set -u
meta=${1:?usage: runner.sh META_DIR}

while IFS= read -r name; do
  case $name in
    SLURM_* | SLURMD_NODENAME) ;;
    *) unset "$name" 2>/dev/null ;;
  esac
done < <(compgen -e)
while IFS= read -r -d '' entry; do
  export -- "$entry" 2>/dev/null || true
done < "$meta/environment"

url="" duration=0
declare -A token=()
while IFS='=' read -r key value; do
  case $key in
    url) url=$value ;;
    duration) duration=${value//[^0-9]/} ;;
    executing | completed | error | aborted) token[$key]=${value//[^0-9a-f]/} ;;
  esac
done < "$meta/callback"

log() { printf '%s %s\n' "$(date -u +%FT%T.%3NZ)" "$*" >> "$meta/runner.log"; }

# report EVENT [STATUS] [SIGNAL] [MAX_SECONDS]: true once the controller answered (any status).
report() {
  local event=$1 status=${2:-} sig=${3:-} jid=${SLURM_JOB_ID:-} code
  code=$(printf 'event=%s&signature=%s&slurm_job_id=%s&status=%s&signal=%s' \
      "$event" "${token[$event]:-}" "${jid//[^0-9_]/}" "${status//[^0-9]/}" \
      "${sig//[^A-Z0-9]/}" |
    curl -sS -o /dev/null -w '%{http_code}' --max-time "${4:-10}" --retry 2 \
      --retry-connrefused --retry-delay 1 \
      -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @- "$url" \
      2>> "$meta/runner.log")
  log "$event status=$status signal=$sig -> HTTP ${code:-000}"
  [ "${code:-000}" != 000 ]
}

watchdog() {
  local sleeper
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  sleep "$1" &
  sleeper=$!
  wait "$sleeper"
  printf '%s\n' "$1" > "$meta/timeout"
  kill -TERM -- "-$child" 2>/dev/null
  sleep 2
  kill -KILL -- "-$child" 2>/dev/null
}

child="" term=""
trap 'term=TERM; [ -n "$child" ] && kill -TERM -- "-$child" 2>/dev/null' TERM
trap 'term=${term:-INT}; [ -n "$child" ] && kill -TERM -- "-$child" 2>/dev/null' INT

report executing || true
# A background child of a non-interactive shell is no group leader: setsid does not fork, so
# $! is the new session (and process group) of the script.
setsid /bin/bash "$meta/wrapper.sh" < /dev/null &
child=$!
watchdog_pid=""
if [ "${duration:-0}" -gt 0 ]; then
  watchdog "$duration" &
  watchdog_pid=$!
fi
while :; do
  wait "$child"
  rc=$?
  # A trap interrupts `wait` (status > 128); wait again until the script has really ended.
  kill -0 "$child" 2>/dev/null || break
done
log "script-ended status=$rc"
if [ -n "$watchdog_pid" ]; then kill "$watchdog_pid" 2>/dev/null; fi
# Whatever the script left in its session goes too: no orphans.
kill -KILL -- "-$child" 2>/dev/null

sig="" limit=10
if [ -e "$meta/timeout" ]; then
  event=aborted
elif [ -n "$term" ]; then
  event=error sig=$term limit=3
elif [ "$rc" -eq 0 ]; then
  event=completed
else
  event=error
fi
printf 'event=%s\nstatus=%s\nsignal=%s\n' "$event" "$rc" "$sig" > "$meta/final"
if report "$event" "$rc" "$sig" "$limit"; then
  : > "$meta/reported"
fi
exit "$rc"
