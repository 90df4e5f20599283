#!/usr/bin/env bash
# Issue 14's first real-simulator table: the `sim` profile, one run at a time on one core
# (records land in results/runs/sim/; finished runs are skipped, so this resumes). Seed 0 on
# the tasks in TASKS first, then the other SEEDS, each task at its table cost limit. A task
# waits until its generated dataset exists (`make data-all` writes it). Then:
#   make table PROFILE=sim; make figure-cost-limits PROFILE=sim   (the latter runs, one per
#   core, the HalfCheetahVelocity runs at kappa 20 and 30 that the figure adds)
source "$(dirname "$0")/../run_queue.sh"
ALGORITHMS=${ALGORITHMS:-bc_safe bear_lag bcq_lag cpq coptidice cdt caps ccac drcorl}
for seed in ${SEEDS:-0 1 2}; do
  for task in ${TASKS:-HalfCheetahVelocity CarRun PointGoal1}; do
    wait_for "$task"
    limit=$(table_limit "$task")
    for algorithm in $ALGORITHMS; do
      run --algorithm "$algorithm" --task "$task" --profile sim --seed "$seed" --cost-limit "$limit"
    done
  done
done
