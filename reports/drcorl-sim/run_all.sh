#!/usr/bin/env bash
# Issue 12's real-simulator comparison, one run at a time on one core (the records land in
# results/runs/drcorl-sim/ and results/runs/drcorl-sim-code/; finished runs are skipped).
# Seed 0 on every task first, then seeds 1 and 2. A task waits until its generated dataset
# exists (`make data-all` / benchmark collect writes it).
source "$(dirname "$0")/../run_queue.sh"
for seed in ${SEEDS:-0 1 2}; do
  for task in ${TASKS:-HalfCheetahVelocity CarRun PointGoal1}; do
    wait_for "$task"
    run --algorithm bc_safe --task "$task" --profile drcorl-sim --seed "$seed"
    run --algorithm drcorl --task "$task" --profile drcorl-sim --seed "$seed"
    run --algorithm drcorl --task "$task" --profile drcorl-sim --seed "$seed" \
      --set cost_signal=iql --set holdout_fraction=0
    run --algorithm drcorl --task "$task" --profile drcorl-sim-code --seed "$seed"
  done
done
