#!/usr/bin/env bash
# The GPU round in one script, for a machine with an NVIDIA GPU (docs/dashboard.md, "The dashboard on a GPU"):
#   bash benchmarks/gpu_run.sh [SHEET]          (default SHEET: docs/gpu_sheet.md)
# 1. installs the project's requirements (requirements.txt) into the current Python;
# 2. runs the tests marked `gpu` (they skip where torch sees no CUDA GPU; here they must run);
# 3. runs benchmarks/gpu_check.py: the GPU-vs-CPU checks and the speed sheet, written to SHEET.
# Exit status: the first failing step's. Everything it prints is worth keeping with the sheet.
set -euo pipefail
cd "$(dirname "$0")/.."
SHEET="${1:-docs/gpu_sheet.md}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

python -m pip install -q -r requirements.txt || echo "pip install failed (offline machine?): going on with what is installed"
python - <<'PY'
import torch
assert torch.cuda.is_available(), "torch sees no CUDA GPU: this script is for a GPU machine"
print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, CUDA {torch.version.cuda}")
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

python -m pytest -q -p no:cacheprovider -m gpu tests/
python benchmarks/gpu_check.py --device cuda --sheet "$SHEET"
echo "sheet written to $SHEET"
