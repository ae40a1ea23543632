#!/usr/bin/env bash
# A learned long-time propagator of ethanol's vibrations at 30 K: mlpot md -> mlpot dynamics fit -> predict.
# Usage: examples/action_angle_ethanol/run.sh [WORK_DIRECTORY (default action-angle-ethanol)]
# STEPS (MD steps of 0.5 fs, default 2000) and MINUTES (training, default 1) shorten or lengthen it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
model="$here/../../models/ethanol-rmd17"
work="${1:-action-angle-ethanol}"
steps="${STEPS:-2000}"
minutes="${MINUTES:-1}"
mkdir -p "$work" && cd "$work"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

# 1. The model's minimum (mlpot md starts where the structure is; at 30 K the start must be the minimum).
python - "$here/../structures/ethanol.xyz" "$model" <<'PY'
import sys
from ase.io import read, write
from mlpot.calculators import MLPotCalculator
from mlpot.dynamics.molecule import relax
from mlpot.models.io import resolve_model_path

write("ethanol-minimum.xyz", relax(read(sys.argv[1]), MLPotCalculator(resolve_model_path(sys.argv[2]))))
PY

# 2. NVE at 30 K: velocities drawn at 60 K, which equipartition halves (the potential starts at zero).
mlpot md --model "$model" --structure ethanol-minimum.xyz --ensemble nve --temperature 60 --timestep 0.5 \
    --steps "$steps" --interval 2 --output md-30K.extxyz --seed 1

# 3. Train an action-angle network on jumps of 1-10 frames (1-10 fs) in the model's normal modes.
mlpot dynamics fit md-30K.extxyz -o ethanol-30K.pt --model "$model" --jumps 1:10 --minutes "$minutes"

# 4. One-step predictions from frame 0 to every 2 fs of the trajectory and on to 5 ps past its end.
end=$(python -c "print($steps * 0.0005)")
mlpot dynamics predict ethanol-30K.pt --from md-30K.extxyz:0 --times "0:$end:0.002" 5 \
    -o predicted.extxyz --plot error.png
echo "wrote $work/predicted.extxyz and $work/error.png"
