#!/usr/bin/env bash
# Issue 27's last step: the chosen honest variant (the default, cost_guidance=iql, which the
# study kept) at the `cpu` budgets (20x drcorl-sim's diffusion steps) on generated data,
# HalfCheetahVelocity and CarRun, seed 3, with BC-Safe beside it. One run at a time on one
# core; finished runs are skipped. Records: results/runs/cpu/.
source "$(dirname "$0")/../run_queue.sh"
for task in ${TASKS:-HalfCheetahVelocity CarRun}; do
  wait_for "$task"
  run --algorithm bc_safe --task "$task" --profile cpu --data generated --seed 3
  run --algorithm drcorl --task "$task" --profile cpu --data generated --seed 3
done
