#!/usr/bin/env bash
# Step 2 of `make install`: torch, at the lock's version, as the build the user chose.
#   usage: requirements/torch.sh auto|cpu|cuda PYTHON
#   auto  pip's own choice: a wheel pip is configured to find locally (find-links) if there is
#         one, else PyPI's (a CUDA build on Linux x86_64; it also runs on a CPU)
#   cuda  PyPI's CUDA build, from PyPI alone (local wheel folders and pip configuration ignored)
#   cpu   PyTorch's CPU wheel index (download.pytorch.org/whl/cpu): no multi-GB CUDA libraries
# A venv whose torch is the other build is switched (torch reinstalled, nothing else).
set -eo pipefail
choice=${1:?auto, cpu or cuda}
py=${2:?the venv python}
here=$(dirname "$0")
version=$(sed -n 's/^torch==\([^ ;#]*\).*/\1/p' "$here/lock.txt")
[ -n "$version" ] || { echo "error: requirements/lock.txt pins no torch==VERSION" >&2; exit 2; }
CPU_INDEX=https://download.pytorch.org/whl/cpu
pip=("$py" -m pip install -q --disable-pip-version-check --no-warn-conflicts)
quiet() { grep -v -e "^WARNING: Location 'file:" -e '^$' || true; }

# "cuda", "cpu" or "none": what the venv holds now
installed_build() {
  "$py" -c 'import torch; print("cuda" if torch.version.cuda else "cpu")' 2>/dev/null || echo none
}

have=$(installed_build)
case "$choice" in
  auto) ;;
  cpu | cuda)
    if [ "$have" != none ] && [ "$have" != "$choice" ]; then
      echo "  switching torch from the $have build to the $choice build"
      "$py" -m pip uninstall -q -y torch
    fi ;;
  *) echo "error: TORCH=$choice: choose auto, cpu or cuda" >&2; exit 2 ;;
esac

case "$choice" in
  auto)
    "${pip[@]}" --upgrade-strategy only-if-needed -c "$here/lock.txt" "torch==$version" 2>&1 | quiet ;;
  cuda)
    env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT \
      PIP_CONFIG_FILE=/dev/null "${pip[@]}" -c "$here/lock.txt" "torch==$version" 2>&1 | quiet ;;
  cpu)
    # torch alone from the CPU index (so an unreachable index fails here rather than pip falling
    # back to PyPI's CUDA build), then its dependencies from the usual index under the lock
    "${pip[@]}" --no-deps --index-url "$CPU_INDEX" "torch==$version" 2>&1 | quiet
    "${pip[@]}" -c "$here/lock.txt" "torch==$version" 2>&1 | quiet ;;
esac

"$py" -W ignore - "$choice" <<'EOF'
import sys

import torch

choice = sys.argv[1]
build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
print(f"  torch {torch.__version__} ({build}); torch.cuda.is_available() = "
      f"{torch.cuda.is_available()}")
if choice == "cuda" and not torch.version.cuda:
    sys.exit("error: TORCH=cuda installed a CPU build")
if choice == "cpu" and torch.version.cuda:
    sys.exit("error: TORCH=cpu installed a CUDA build")
EOF
