#!/usr/bin/env bash
# Start a throw-away single-node Slurm 22.05 cluster with accounting, bound to 127.0.0.1 only.
#
# Everything it makes (configs, state, logs, PID files, the munge key and socket, MariaDB's data)
# lives under $SLURM_BASE; nothing goes to /etc. Daemons: munged, mariadbd, slurmdbd, slurmctld,
# slurmd. Accounting is on because submitit learns a job's state only from `sacct`.
# Missing Debian packages are installed with apt-get (root only). See
# ../../../shared/reference/slurm.md for the recipe this follows and its pitfalls.
#
# Usage:  SLURM_BASE=/tmp/osb-slurm bash tests/slurm/up.sh      (then: export SLURM_CONF=...)
#         SLURM_BASE=/tmp/osb-slurm bash tests/slurm/down.sh
# Knobs (environment):
#   SLURM_BASE            folder for everything (default /tmp/osb-slurm); reused if already up
#   SLURM_MAX_ARRAY_SIZE  the cluster's MaxArraySize (default 4, small on purpose so tests see
#                         a sweep split into several arrays)
#   SLURM_PORT            first of three ports: slurmctld, slurmd, slurmdbd (default 6817)
#   SLURM_DB_PORT         MariaDB's port (default 3307)
#   SLURM_CACHE           where an empty MariaDB data folder is kept between clusters
#                         (default /var/cache/osb-slurm; the only thing outside SLURM_BASE)
# Partitions: `debug` (default, runs jobs) and `hold` (State=DOWN: accepts jobs, never starts
# them, so a test can read a submitted job's script and cancel it). The node advertises one
# fake GPU (a GRES whose device file is /dev/null) so that `--gpus-per-node=1` is accepted;
# a job that gets it still sees no CUDA device and runs on CPU.
set -euo pipefail
BASE=${SLURM_BASE:-/tmp/osb-slurm}
MAX_ARRAY=${SLURM_MAX_ARRAY_SIZE:-4}
PORT=${SLURM_PORT:-6817}
DB_PORT=${SLURM_DB_PORT:-3307}
CACHE=${SLURM_CACHE:-/var/cache/osb-slurm}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DEBIAN_FRONTEND=noninteractive
export SLURM_CONF=$BASE/etc/slurm.conf
MSOCK=$BASE/munge/munge.socket.2
t0=$EPOCHREALTIME
log() { awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN{printf "[slurm-up %5.1fs] %s\n", b-a, m}'; }
die() { echo "slurm-up: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (the daemons run as root on this throw-away cluster)"

# ---------- 0. already up? then reuse ----------
alive() {  # alive PID [COMM]: running (not a zombie) and, if given, named COMM
  local _pid comm st
  read -r _pid comm st _ 2>/dev/null <"/proc/$1/stat" || return 1
  [ "$st" != Z ] && { [ -z "${2:-}" ] || [ "$comm" = "($2)" ]; }
}
if [ -s "$BASE/run/slurmctld.pid" ] && alive "$(cat "$BASE/run/slurmctld.pid")" slurmctld \
   && [ "$(sinfo -h -p debug -o %T 2>/dev/null)" = idle ]; then
  log "already up; export SLURM_CONF=$SLURM_CONF"
  exit 0
fi

# ---------- 1. packages ----------
pkgs="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  command -v apt-get >/dev/null || die "packages missing ($missing) and no apt-get to install them"
  echo "[slurm-up] installing:$missing"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  log "packages installed"
fi

# ---------- 2. preflight ----------
# NoInAddrAny makes slurmd/slurmdbd/srun bind the address `hostname` resolves to: it must be
# loopback, or they would listen on the LAN.
hostaddr=$(getent ahostsv4 "$(hostname)" | awk 'NR==1{print $1}')
[[ $hostaddr == 127.* ]] || die "hostname $(hostname) resolves to '$hostaddr', not loopback;" \
  "add '127.0.1.1 $(hostname)' to /etc/hosts"
for p in "$PORT" $((PORT + 1)) $((PORT + 2)) "$DB_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is in use (another cluster?); set SLURM_PORT and SLURM_DB_PORT"
  fi
done
# A folder left by a crashed cluster is wiped, but only if this script made it (marker file):
# recovering old jobs would confuse tests, and SLURM_BASE must never point at a real folder.
if [ -e "$BASE" ]; then
  [ -e "$BASE/.osb-slurm" ] || [ -z "$(ls -A "$BASE")" ] || die "$BASE exists and was not made by up.sh"
  bash "$HERE/down.sh" >/dev/null 2>&1 || true
  rm -rf "$BASE"
fi
mkdir -p "$BASE"/{etc,log,run,state/ctld,state/d,munge}
touch "$BASE/.osb-slurm"
chmod 711 "$BASE/munge"   # munged wants o+x on its socket folder
# A failure half-way (an error or a `die`) stops whatever already started.
up_ok=0
trap '[ "$up_ok" = 1 ] || { echo "slurm-up: failed; stopping what started" >&2; bash "$HERE/down.sh" >&2 || true; }' EXIT

# ---------- 3. munge: own key, own socket ----------
dd if=/dev/urandom of="$BASE/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$BASE/munge/munge.key"
munged --socket="$MSOCK" --key-file="$BASE/munge/munge.key" --log-file="$BASE/log/munged.log" \
       --pid-file="$BASE/run/munged.pid" --seed-file="$BASE/munge/munged.seed"
munge -S "$MSOCK" -n | unmunge -S "$MSOCK" >/dev/null
log "munged up (pid $(cat "$BASE/run/munged.pid"))"

# ---------- 4. MariaDB on 127.0.0.1:$DB_PORT ----------
# mariadb-install-db takes seconds; its pristine output (no users, no data) is kept once per
# MariaDB version and copied, so later clusters start faster.
template=$CACHE/mysql-$(mariadbd --version | md5sum | cut -c1-12)
if [ ! -d "$template/mysql" ]; then
  mariadb-install-db --user=root --datadir="$BASE/mysql" --auth-root-authentication-method=normal \
                     --skip-test-db >"$BASE/log/mysql-install.log" 2>&1
  mkdir -p "$CACHE" && rm -rf "$template.tmp" && cp -a "$BASE/mysql" "$template.tmp" \
    && mv -T "$template.tmp" "$template" || true
else
  cp -a "$template" "$BASE/mysql"
fi
# mariadbd does not daemonize; detach its stdio so a piped caller does not hang.
mariadbd --no-defaults --user=root --datadir="$BASE/mysql" --bind-address=127.0.0.1 \
         --port="$DB_PORT" --socket="$BASE/run/mysqld.sock" --pid-file="$BASE/run/mysqld.pid" \
         --log-error="$BASE/log/mysqld.err" --innodb-buffer-pool-size=64M \
         </dev/null >/dev/null 2>&1 &
sql() { mariadb-admin --no-defaults -S "$BASE/run/mysqld.sock" -uroot "$@"; }
for _ in $(seq 150); do sql ping >/dev/null 2>&1 && break; sleep 0.2; done
sql ping >/dev/null || die "mariadbd did not start; see $BASE/log/mysqld.err"
mariadb --no-defaults -S "$BASE/run/mysqld.sock" -uroot -e "
  CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
  CREATE USER 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
  FLUSH PRIVILEGES;"
log "mariadbd up (pid $(cat "$BASE/run/mysqld.pid"))"

# ---------- 5. configs ----------
# slurmdbd has no -f: it reads slurmdbd.conf beside $SLURM_CONF. It must be mode 600 (password).
install -m 600 /dev/null "$BASE/etc/slurmdbd.conf"
cat >"$BASE/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$MSOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
# DbdAddr does not decide the bind address; this does (else slurmdbd listens on 0.0.0.0)
CommunicationParameters=NoInAddrAny
SlurmUser=root
DebugLevel=info
LogFile=$BASE/log/slurmdbd.log
PidFile=$BASE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF

# What slurmd detects (not `nproc`, which obeys OMP_NUM_THREADS); more would DRAIN the node.
detected=$(slurmd -C)
ncpu=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$detected")
realmem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$detected")
# slurmd counts a GPU only with a device file; /dev/null stands in (no cgroups constrain it).
echo "NodeName=localhost Name=gpu File=/dev/null" >"$BASE/etc/gres.conf"
cat >"$BASE/etc/slurm.conf" <<EOF
ClusterName=localtest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire=5: a requeued job may start again after ~6 s instead of 121 s
AuthInfo=socket=$MSOCK,cred_expire=5
# bind every daemon (NoInAddrAny) and slurmctld (NoCtldInAddrAny) to 127.0.0.1, not 0.0.0.0
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
StateSaveLocation=$BASE/state/ctld
SlurmdSpoolDir=$BASE/state/d
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# start array tasks and requeued jobs at once instead of after 3 s / the 30-60 s loops
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=2,sched_interval=1
MaxArraySize=$MAX_ARRAY
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT + 2))
# the munge socket for connections to slurmdbd (AuthInfo does not cover them)
AccountingStoragePass=$MSOCK
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
# SIGTERM -> SIGKILL after 2 s (default 30): the runner checkpoints at the next step, in ms
KillWait=2
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$ncpu Sockets=1 CoresPerSocket=$ncpu ThreadsPerCore=1 RealMemory=$realmem Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=hold Nodes=ALL MaxTime=INFINITE State=DOWN
EOF

# ---------- 6. Slurm daemons ----------
slurmdbd
for _ in $(seq 150); do sacctmgr -n show cluster >/dev/null 2>&1 && break; sleep 0.2; done
sacctmgr -i add cluster localtest >/dev/null
log "slurmdbd up (pid $(cat "$BASE/run/slurmdbd.pid"))"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 150); do [ "$(sinfo -h -p debug -o %T 2>/dev/null)" = idle ] && break; sleep 0.2; done
if [ "$(sinfo -h -p debug -o %T)" != idle ]; then
  sinfo >&2 || true
  tail -n 20 "$BASE/log/slurmctld.log" "$BASE/log/slurmd.log" >&2
  die "the node did not come up idle"
fi
up_ok=1
log "slurmctld (pid $(cat "$BASE/run/slurmctld.pid")) + slurmd (pid $(cat "$BASE/run/slurmd.pid")) up"
echo "export SLURM_CONF=$SLURM_CONF"
