#!/usr/bin/env bash
# Every GPU measurement of issue 12 in one call, on a CUDA machine that has torch (with Triton)
# and none of the project's other dependencies: install the carried wheels (fetch_wheels.sh),
# check the fused path on the device, then time mlpot and mace-torch side by side.
#
#   device run, carry [".whl"]:  bash benchmarks/gpu/run.sh      (results under $OUT or benchmarks/gpu/out)
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-benchmarks/gpu/out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
pip_install() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$1" "${@:2}"; }
pip_install /tmp/site .whl/mlpot/*.whl || exit 1
pip_install /tmp/site-mace .whl/mace/*.whl || echo "mace-torch wheels missing: mlpot only"
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$out/gpu.txt"

python3 benchmarks/gpu/check.py 2>&1 | tee "$out/check.log" || { echo "GPU checks failed: no timing"; exit 1; }

results="$out/results.jsonl"
: > "$results"
mlpot() { timeout 240 python3 benchmarks/gpu/bench.py --package mlpot --out "$results" "$@" > /dev/null || echo "mlpot failed: $*"; }
mace() {
  PYTHONPATH=/tmp/site-mace:/tmp/site:$PWD TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 timeout 240 \
    python3 benchmarks/gpu/bench.py --package mace-torch --out "$results" "$@" > /dev/null 2>&1 || echo "mace-torch failed: $*"
}
for system in ethanol water648 water3993 water12288 water31944; do
  mlpot --system "$system"
  mace --system "$system"
done
mlpot --system water3993 --kernel reference
for batch in 5 32 128; do
  mlpot --what train --batch "$batch"
  mace --what train --batch "$batch"
done
mlpot --what calculator --system water3993
mlpot --what calculator --system ethanol
python3 benchmarks/gpu/report.py "$results" | tee "$out/results.md"
