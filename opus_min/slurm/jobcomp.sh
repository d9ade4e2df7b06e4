#!/usr/bin/env bash
# opus_min's Slurm-side hook: install it as the cluster's jobcomp/script (JobCompType=jobcomp/script,
# JobCompLoc=<a copy of this file>) or call it from EpilogSlurmctld. slurmctld runs it after every
# job with JOBID, JOBSTATE, EXITCODE, JOBNAME and WORK_DIR in the environment.
#
# For an opus_min job (named opus-<job id>) that could not report its own end (cancelled while
# pending, killed by SIGKILL, out of memory, node failure, preemption, time limit...), it sends the
# final Slurm state to the controller, signed with the job's own "slurm" token from
# <job folder>/.opus/callback. Every other job is ignored at once. It never fails slurmctld.
set -u
case "${JOBNAME:-}" in
  opus-*) ;;
  *) exit 0 ;;
esac
meta=${WORK_DIR:-/nonexistent}/.opus
[ -r "$meta/callback" ] || exit 0
# The job delivered its own final report: nothing to add.
[ -e "$meta/reported" ] && exit 0

url="" token=""
while IFS='=' read -r key value; do
  case $key in
    url) url=$value ;;
    slurm) token=$value ;;
  esac
done < "$meta/callback"
[ -n "$url" ] && [ -n "$token" ] || exit 0

state=${JOBSTATE:-} exit_code=${EXITCODE:-} jid=${JOBID:-}
printf 'event=slurm&signature=%s&slurm_job_id=%s&slurm_state=%s&exit_code=%s' \
    "${token//[^0-9a-f]/}" "${jid//[^0-9_]/}" "${state//[^A-Z_]/}" "${exit_code//[^0-9:-]/}" |
  curl -sS -o /dev/null --max-time 5 --retry 1 --retry-connrefused --retry-delay 1 \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @- "$url" > /dev/null 2>&1
exit 0
