#!/usr/bin/env bash
# Issue 27's study (reports/drcorl-guided/PLAN.md), one run at a time on one core; finished
# runs are skipped, so rerunning resumes. Seed by seed: every task at seed 3 first.
# Records: results/runs/drcorl-guided/ (honest variants, BC-Safe) and
# results/runs/drcorl-sim-code/ (paper-code).
source "$(dirname "$0")/../run_queue.sh"
for seed in ${SEEDS:-3 4 5}; do
  for task in ${TASKS:-HalfCheetahVelocity CarRun PointGoal1}; do
    wait_for "$task"
    run --algorithm bc_safe --task "$task" --profile drcorl-guided --seed "$seed"
    # today's honest default; it trains and saves the shared stages the next two reuse
    run --algorithm drcorl --task "$task" --profile drcorl-guided --seed "$seed"
    run --algorithm drcorl --task "$task" --profile drcorl-guided --seed "$seed" \
      --set cost_guidance=policy_eval
    run --algorithm drcorl --task "$task" --profile drcorl-guided --seed "$seed" \
      --set cost_guidance=policy_eval --set pe_std_coef=1
    run --algorithm drcorl --task "$task" --profile drcorl-sim-code --seed "$seed"
  done
done
