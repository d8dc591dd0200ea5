#!/usr/bin/env bash
# CI's SLURM stage: the SLURM profile on a real one-node cluster (.ci/slurm/up.sh), taken down
# again by PID on any exit (.ci/slurm/down.sh, from a trap). Checks, in order:
#   1. a run with the profile's placeholders stops before submitting anything, naming the keys;
#   2. SIGTERM to Snakemake during a run cancels its SLURM jobs (squeue empty, sacct CANCELLED);
#   3. the CI configuration (tests/ci_config.yaml + tests/ci_slurm_config.yaml) runs through
#      `--workflow-profile profiles/slurm` plus CI's site overlay (.ci/slurm/overlay.yaml), every
#      job COMPLETED without a GPU request (use_gpu: false), and .ci/check_outputs.py passes.
# Usage: bash .ci/slurm/run.sh   (from anywhere; uses .venv/ of the repository)
set -euo pipefail
cd "$(dirname "$0")/../.."

SMK=${SMK:-.venv/bin/snakemake}
PY=${PY:-.venv/bin/python}
OUT=ci_out/slurm
WORK=$(mktemp -d /tmp/mmtrace-slurm-ci.XXXXXX)
CFG=(--configfile tests/ci_config.yaml tests/ci_slurm_config.yaml)
step() { printf '\n--- [slurm %4ss] %s\n' "$SECONDS" "$*"; }
fail() {
  echo "SLURM stage FAILED: $*" >&2
  exit 1
}
our_jobs() { squeue -h -o '%i %T %j' 2>/dev/null || true; }

cleanup() {
  local rc=$?
  if [ -n "${SMK_PID:-}" ] && kill -0 "$SMK_PID" 2>/dev/null; then
    kill -TERM "$SMK_PID" 2>/dev/null || true
    wait "$SMK_PID" 2>/dev/null || true
  fi
  bash .ci/slurm/down.sh || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

step "bring up the cluster"
bash .ci/slurm/up.sh
mapfile -t SITE < <("$PY" .ci/slurm/overlay.py)
echo "site overlay: ${SITE[*]}"

step "1. placeholders are refused before any submission"
if "$SMK" toy_world --workflow-profile profiles/slurm "${CFG[@]}" >"$WORK/placeholders.log" 2>&1; then
  fail "a run with the profile's placeholders did not fail"
fi
for key in "slurm_account='your_account'" "slurm_partition='your_cpu_partition'"; do
  grep -qF "$key" "$WORK/placeholders.log" || {
    cat "$WORK/placeholders.log"
    fail "the message does not name $key"
  }
done
[ -z "$(our_jobs)" ] || fail "jobs were submitted: $(our_jobs)"
grep -A3 "still has placeholders" "$WORK/placeholders.log"

step "2. SIGTERM to Snakemake cancels its running jobs"
printf 'paths:\n  data: %s/data\n  results: %s/results\n  figures: %s/figures\n  tables: %s/tables\n  logs: %s/logs\n' \
  "$WORK/sigterm" "$WORK/sigterm" "$WORK/sigterm" "$WORK/sigterm" "$WORK/sigterm" >"$WORK/sigterm.yaml"
"$SMK" --workflow-profile profiles/slurm "${CFG[@]}" "$WORK/sigterm.yaml" "${SITE[@]}" \
  >"$WORK/sigterm.log" 2>&1 &
SMK_PID=$!
running=""
while kill -0 "$SMK_PID" 2>/dev/null; do # until a job of this run is RUNNING on the node
  running=$(squeue -h -t RUNNING -o %i 2>/dev/null | head -1)
  [ -n "$running" ] && break
  sleep 0.5
done
[ -n "$running" ] || {
  tail -30 "$WORK/sigterm.log"
  fail "Snakemake ended before any job ran"
}
echo "job $running is running; SIGTERM to Snakemake (pid $SMK_PID)"
kill -TERM "$SMK_PID"
set +e
wait "$SMK_PID"
rc=$?
set -e
SMK_PID=""
echo "Snakemake exited with $rc"
for _ in $(seq 60); do
  [ -z "$(our_jobs)" ] && break
  sleep 0.5
done
[ -z "$(our_jobs)" ] || fail "jobs left after SIGTERM: $(our_jobs)"
state=$(sacct -n -X -P -j "$running" -o State | head -1)
echo "job $running: $state; squeue is empty"
case "$state" in CANCELLED*) ;; *) fail "job $running ended $state, not CANCELLED" ;; esac
grep -i "cancel\|terminat" "$WORK/sigterm.log" | tail -3 || true

step "3. the CI configuration through profiles/slurm (-> $OUT)"
rm -rf "$OUT"
start=$(date +%s)
"$SMK" --workflow-profile profiles/slurm "${CFG[@]}" "${SITE[@]}" >"$WORK/run.log" 2>&1 || {
  tail -60 "$WORK/run.log"
  fail "the workflow failed under SLURM"
}
echo "workflow under SLURM: $(($(date +%s) - start)) s"
grep -E "^[0-9]+ of [0-9]+ steps" "$WORK/run.log" | tail -1
since=$(date -d "@$start" +%Y-%m-%dT%H:%M:%S)
sacct -n -X -P -S "$since" -o JobID,JobName,State,ReqTRES,Elapsed >"$WORK/sacct.txt"
echo "$(wc -l <"$WORK/sacct.txt") SLURM jobs: $(cut -d'|' -f3 "$WORK/sacct.txt" | sort | uniq -c | tr '\n' ' ')"
if grep -v '|COMPLETED|' "$WORK/sacct.txt"; then fail "a job did not complete"; fi
if grep -i 'gres/gpu' "$WORK/sacct.txt"; then fail "a job requested a GPU with use_gpu: false"; fi
"$PY" .ci/check_outputs.py "$OUT"
