#!/usr/bin/env bash
# Issue 14's first real-simulator table: the `sim` profile, one run at a time on one core
# (records land in results/runs/sim/; finished runs are skipped, so this resumes). Seed 0 on
# the tasks in TASKS first, then the other SEEDS. A task waits until its generated dataset
# exists (`make data-all` writes it). Then: make table figure-cost-limits PROFILE=sim.
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1
PY=.venv/bin/python
ALGORITHMS=${ALGORITHMS:-bc_safe bear_lag bcq_lag cpq coptidice cdt caps ccac drcorl}
run() { echo "[$(date -u +%H:%M:%S)] $*"; timeout 3600 $PY -m benchmark run "$@" 2>&1 | grep -v "it/s" | tail -2; }
wait_for() {
  until $PY -c "from benchmark.data import load_dataset; from benchmark.tasks import get_task; load_dataset(get_task('$1'), source='generated')" 2>/dev/null; do
    sleep 60
  done
}
for seed in ${SEEDS:-0 1 2}; do
  for task in ${TASKS:-HalfCheetahVelocity CarRun PointGoal1}; do
    wait_for "$task"
    for algorithm in $ALGORITHMS; do
      run --algorithm "$algorithm" --task "$task" --profile sim --seed "$seed"
    done
  done
done
