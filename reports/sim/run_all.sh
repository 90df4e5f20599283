#!/usr/bin/env bash
# Issue 14's first real-simulator table: the `sim` profile, one run at a time on one core
# (records land in results/runs/sim/; finished runs are skipped, so this resumes). Seed 0 on
# the tasks in TASKS first, then the other SEEDS. A task waits until its generated dataset
# exists (`make data-all` writes it). Then: make table figure-cost-limits PROFILE=sim.
source "$(dirname "$0")/../run_queue.sh"
ALGORITHMS=${ALGORITHMS:-bc_safe bear_lag bcq_lag cpq coptidice cdt caps ccac drcorl}
for seed in ${SEEDS:-0 1 2}; do
  for task in ${TASKS:-HalfCheetahVelocity CarRun PointGoal1}; do
    wait_for "$task"
    for algorithm in $ALGORITHMS; do
      run --algorithm "$algorithm" --task "$task" --profile sim --seed "$seed"
    done
  done
done
