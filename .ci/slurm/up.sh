#!/usr/bin/env bash
# Bring up a one-node Slurm cluster (Debian 12's Slurm 22.05) on this machine, as root and
# without systemd, for CI's run of the SLURM profile. Written for this project from a tested
# recipe; .ci/slurm/down.sh takes it down again.
#
# What it does, in order: installs the packages if missing (apt), writes slurm.conf, gres.conf
# and slurmdbd.conf, starts munged, mariadbd, slurmdbd, slurmctld and slurmd each in its own
# session in the daemon's foreground mode, records "name pid" lines in $STATE/pids (down.sh stops
# exactly those PIDs), and creates the cluster, the account and root's association in
# slurmdbd. Running it again starts only what is not running.
#
# Settings (environment):
#   MMTRACE_SLURM_STATE      state folder (default /tmp/mmtrace-slurm): pids, logs, spool, db
#   MMTRACE_SLURM_PARTITION  the one partition (default "debug")
#   MMTRACE_SLURM_ACCOUNT    the account created in slurmdbd (default "local")
#   MMTRACE_SLURM_MEM_MB     the node's RealMemory (default: 80% of this machine's RAM)
#
# Pitfalls this handles (each cost a failed bring-up in the recipe):
# - munged must be started as the munge user directly (setpriv), or the recorded PID is a
#   wrapper's;
# - mariadbd cannot write its pid and log into a root-owned folder;
# - DefMemPerCPU: without it a job that asks for no memory takes the whole node;
# - MinJobAge: finished jobs must stay visible to squeue long enough for a status check;
# - a GPU GRES line needs File= (File=/dev/null) or slurmd marks the node INVAL (no GRES here);
# - package post-install scripts would start daemons through init scripts: a policy-rc.d that
#   forbids it is put in place for the install (and removed after, if we added it).
set -euo pipefail

STATE=${MMTRACE_SLURM_STATE:-/tmp/mmtrace-slurm}
PARTITION=${MMTRACE_SLURM_PARTITION:-debug}
ACCOUNT=${MMTRACE_SLURM_ACCOUNT:-local}
RAM_MB=$(awk '/^MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
MEM_MB=${MMTRACE_SLURM_MEM_MB:-$((RAM_MB * 80 / 100))}
CPUS=$(nproc)
HOST=$(hostname -s)
DB_PASSWORD=mmtrace-ci-slurmdb
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

log() { printf '[slurm up %3ss] %s\n' "$SECONDS" "$*"; }
die() { printf 'slurm up: ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$STATE"/{log,spool,ctld,db}
touch "$STATE/pids"

# --- packages -----------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$STATE/log/apt.log" 2>&1 ||
    { tail -20 "$STATE/log/apt.log" >&2; die "apt-get install failed (log: $STATE/log/apt.log)"; }
  [ "$added_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "packages installed"
fi

# --- PID bookkeeping ----------------------------------------------------------------------
recorded() { awk -v n="$1" '$1 == n {p = $2} END {print p}' "$STATE/pids"; }
running() { # NAME: its recorded PID is alive and is that program
  local pid
  pid=$(recorded "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}
launch() { # NAME CMD...: start CMD in a new session, record its PID, check that it stays up
  local name=$1
  shift
  if running "$name"; then
    log "$name already running (pid $(recorded "$name"))"
    return
  fi
  setsid "$@" >"$STATE/log/$name.out" 2>&1 </dev/null &
  local pid=$!
  { grep -v "^$name " "$STATE/pids" || true; echo "$name $pid"; } >"$STATE/pids.new"
  mv "$STATE/pids.new" "$STATE/pids"
  sleep 0.5
  running "$name" || { tail -20 "$STATE/log/$name.out" >&2; die "$name exited at start"; }
  log "$name started (pid $pid)"
}
until_ok() { # SECONDS CMD...: retry CMD every half second
  local tries=$(($1 * 2))
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# --- configuration ------------------------------------------------------------------------
mkdir -p /etc/slurm
cat >"$STATE/slurm.conf" <<CONF
# One-node test cluster written by mmtrace's .ci/slurm/up.sh (down.sh parks this file)
ClusterName=mmtrace
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=600
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
: >"$STATE/gres.conf"
reconfigured=0
cmp -s "$STATE/slurm.conf" /etc/slurm/slurm.conf || reconfigured=1
cp "$STATE/slurm.conf" /etc/slurm/slurm.conf
cp "$STATE/gres.conf" /etc/slurm/gres.conf
cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=mmtrace_slurm_acct_db
CONF
chmod 600 /etc/slurm/slurmdbd.conf

# --- munge --------------------------------------------------------------------------------
[ -s /etc/munge/munge.key ] || mungekey --create
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
chmod 600 /etc/munge/munge.key
launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground
until_ok 20 sh -c 'munge -n | unmunge' || die "munge does not answer"

# --- accounting: mariadb and slurmdbd ------------------------------------------------------
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld "$STATE/db"
launch mariadbd /usr/sbin/mariadbd --user=mysql --skip-networking \
  --socket=/run/mysqld/mysqld.sock --pid-file="$STATE/db/mariadbd.pid" \
  --log-error="$STATE/db/mariadb.err" --innodb-buffer-pool-size=64M
until_ok 90 mariadb-admin --socket=/run/mysqld/mysqld.sock ping || die "mariadb does not answer"
mariadb --socket=/run/mysqld/mysqld.sock -e "
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
  GRANT ALL ON mmtrace_slurm_acct_db.* TO 'slurm'@'localhost';
  FLUSH PRIVILEGES;"
launch slurmdbd /usr/sbin/slurmdbd -D
until_ok 90 sacctmgr -n list cluster || die "slurmdbd does not answer (log: $STATE/log/slurmdbd.log)"
sacctmgr -n -P list cluster format=cluster | grep -qx mmtrace || sacctmgr -i add cluster mmtrace >/dev/null
sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" ||
  sacctmgr -i add account "$ACCOUNT" Description=ci Organization=mmtrace >/dev/null
sacctmgr -n -P list assoc user=root account="$ACCOUNT" format=account | grep -qx "$ACCOUNT" ||
  sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
log "slurmdbd: cluster mmtrace, account $ACCOUNT for root"

# --- controller and node ------------------------------------------------------------------
if [ "$reconfigured" = 1 ]; then # a changed slurm.conf needs fresh daemons
  for name in slurmd slurmctld; do
    if running "$name"; then
      kill -TERM "$(recorded "$name")"
      until_ok 30 sh -c "! kill -0 $(recorded "$name")" || true
    fi
  done
fi
launch slurmctld /usr/sbin/slurmctld -D
launch slurmd /usr/sbin/slurmd -D
node_up() { scontrol show node "$HOST" | grep -qE 'State=(IDLE|MIXED|ALLOCATED)'; }
if ! until_ok 90 node_up; then
  scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
  until_ok 30 node_up || { scontrol show node "$HOST" >&2; die "node $HOST is not usable"; }
fi
log "up: node $HOST ($CPUS CPUs, $MEM_MB MB), partition $PARTITION, account $ACCOUNT"
log "pids: $(tr '\n' ' ' <"$STATE/pids")"
