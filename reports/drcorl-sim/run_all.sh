#!/usr/bin/env bash
# Issue 12's real-simulator comparison, one run at a time on one core (the records land in
# results/runs/drcorl-sim/ and results/runs/drcorl-sim-code/; finished runs are skipped).
# Seed 0 on both tasks first, then seeds 1 and 2. A task waits until its generated dataset
# exists (`make data-all` / benchmark collect writes it).
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
PY=.venv/bin/python
run() { echo "[$(date -u +%H:%M:%S)] $*"; timeout 3600 $PY -m benchmark run "$@" 2>&1 | grep -v "it/s" | tail -3; }
wait_for() {
  until $PY -c "from benchmark.data import load_dataset; from benchmark.tasks import get_task; load_dataset(get_task('$1'), source='generated')" 2>/dev/null; do
    sleep 60
  done
}
for seed in ${SEEDS:-0 1 2}; do
  for task in ${TASKS:-HalfCheetahVelocity CarRun}; do
    wait_for "$task"
    run --algorithm bc_safe --task "$task" --profile drcorl-sim --seed "$seed"
    run --algorithm drcorl --task "$task" --profile drcorl-sim --seed "$seed"
    run --algorithm drcorl --task "$task" --profile drcorl-sim --seed "$seed" \
      --set cost_signal=iql --set holdout_fraction=0
    run --algorithm drcorl --task "$task" --profile drcorl-sim-code --seed "$seed"
  done
done
