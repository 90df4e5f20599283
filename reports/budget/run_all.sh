#!/usr/bin/env bash
# Issue 29's budget curves (profile `budget`), one run at a time on one core; finished runs are
# skipped, so rerunning resumes. Scale by scale and seed by seed, so a partial run is a
# complete set of methods at the smaller scales. Records: results/runs/budget/.
# Then: .venv/bin/python -m benchmark figure-budget --profile budget
source "$(dirname "$0")/../run_queue.sh"
for scale in ${SCALES:-1 4 16}; do
  for seed in ${SEEDS:-0 1}; do
    for task in ${TASKS:-HalfCheetahVelocity CarRun}; do
      wait_for "$task"
      for algorithm in ${ALGORITHMS:-bc_safe drcorl coptidice caps bcq_lag}; do
        run --algorithm "$algorithm" --task "$task" --profile budget --seed "$seed" \
          --budget-scale "$scale"
      done
    done
  done
done
