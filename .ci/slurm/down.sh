#!/usr/bin/env bash
# Take down the cluster .ci/slurm/up.sh started: cancel every job still queued or running, stop
# the daemons by the PIDs up.sh recorded (never by name), then park /etc/slurm/slurm.conf.
#
# Parking: Snakemake's SLURM plugin runs `scontrol show config` at every Snakemake start on a
# machine with Slurm installed (to pick its default status command). With a slurm.conf that
# names a controller that is gone, each such call retries for about 9 s; with no slurm.conf at
# all, Slurm's configless lookup can take a minute. A comment-only slurm.conf makes it fail at
# once, so later local runs are not slowed. up.sh writes the real file again.
#
# Safe to run twice, and after a failed or partial up.sh.
set -uo pipefail

STATE=${MMTRACE_SLURM_STATE:-/tmp/mmtrace-slurm}

log() { printf '[slurm down] %s\n' "$*"; }
recorded() { awk -v n="$1" '$1 == n {p = $2} END {print p}' "$STATE/pids" 2>/dev/null; }
running() {
  local pid
  pid=$(recorded "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

if [ -f "$STATE/pids" ]; then
  if running slurmctld; then
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs
      for _ in $(seq 40); do
        [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
        sleep 0.5
      done
    fi
  fi
  for name in slurmd slurmctld slurmdbd mariadbd munged; do
    pid=$(recorded "$name")
    [ -n "$pid" ] || continue
    if running "$name"; then
      kill -TERM "$pid"
      for _ in $(seq 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) ignored SIGTERM: SIGKILL"
        kill -KILL "$pid"
      fi
      log "stopped $name (pid $pid)"
    else
      log "$name (pid $pid) was not running"
    fi
  done
  rm -f "$STATE/pids"
else
  log "no $STATE/pids: nothing was started"
fi

# also when Slurm is installed but has no slurm.conf yet (e.g. installed, never brought up)
if { [ -f /etc/slurm/slurm.conf ] || command -v sinfo >/dev/null; } &&
  ! grep -qs '^# parked' /etc/slurm/slurm.conf; then
  mkdir -p /etc/slurm
  echo "# parked by mmtrace's .ci/slurm/down.sh: no cluster is running (.ci/slurm/up.sh writes the real file)" \
    >/etc/slurm/slurm.conf
  log "parked /etc/slurm/slurm.conf"
fi
exit 0
