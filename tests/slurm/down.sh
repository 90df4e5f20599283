#!/usr/bin/env bash
# Stop the cluster that up.sh started under $SLURM_BASE: exactly the daemons whose PIDs it
# wrote to $SLURM_BASE/run, never anything found by name. Safe to run twice.
# Usage: SLURM_BASE=/tmp/osb-slurm bash tests/slurm/down.sh [--purge]   (--purge: rm the folder)
BASE=${SLURM_BASE:-/tmp/osb-slurm}
export SLURM_CONF=$BASE/etc/slurm.conf
[ -d "$BASE/run" ] || { echo "[slurm-down] nothing under $BASE"; exit 0; }

# A stopped daemon stays a zombie until PID 1 reaps it, so `kill -0` is not enough.
alive() {  # alive PID [COMM]: running (not a zombie) and, if given, named COMM
  local _pid comm st
  read -r _pid comm st _ 2>/dev/null <"/proc/$1/stat" || return 1
  [ "$st" != Z ] && { [ -z "${2:-}" ] || [ "$comm" = "($2)" ]; }
}
# Jobs first, so slurmd reaps their steps; only if this cluster's controller is ours and up.
if [ -s "$BASE/run/slurmctld.pid" ] && alive "$(cat "$BASE/run/slurmctld.pid")" slurmctld; then
  if [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    scancel --full --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 25); do [ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi
stop() {  # stop NAME COMM: TERM the PID in run/NAME.pid if it is COMM, KILL it after 10 s
  local f=$BASE/run/$1.pid pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if alive "$pid" "$2"; then
    kill -TERM "$pid"
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
    alive "$pid" && kill -KILL "$pid"
    echo "[slurm-down] $2 (pid $pid) stopped"
  fi
  rm -f "$f"
}
# Reverse start order: clients of a daemon go before it.
stop slurmd slurmd
stop slurmctld slurmctld
stop slurmdbd slurmdbd
stop mysqld mariadbd
stop munged munged
if [ "${1:-}" = --purge ] && [ -e "$BASE/.osb-slurm" ]; then rm -rf "$BASE"; fi
echo "[slurm-down] stopped"
