# Sourced by the reports' run_all.sh scripts: one `benchmark run` at a time on one core, each
# printed with its start time; `wait_for TASK` blocks until TASK's generated dataset exists.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_NUM_THREADS=1
PY=.venv/bin/python
# tqdm redraws with \r: split those frames into lines so that dropping them (it/s) cannot drop the
# result line that follows the last frame on the same line
run() {
  echo "[$(date -u +%H:%M:%S)] $*"
  timeout 3600 $PY -m benchmark run "$@" 2>&1 | tr '\r' '\n' | grep -v -e "it/s" -e '^[[:space:]]*$' | tail -5
}
# the task's table cost limit (DRCORL's: 10, CarRun 30)
table_limit() { $PY -c "from benchmark.tasks import get_task; print(get_task('$1').drcorl_cost_limit)"; }
wait_for() {
  until $PY -c "from benchmark.data import load_dataset; from benchmark.tasks import get_task; load_dataset(get_task('$1'), source='generated')" 2>/dev/null; do
    sleep 60
  done
}
