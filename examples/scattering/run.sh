#!/usr/bin/env bash
# Cu3Au crystal with the demo potential (models/cuau-emt-demo, trained on EMT) through `mlpot md`,
# its melt with EMT itself (melt_emt.py), then `mlpot analyze` on both and `mlpot phonons` on the cell.
# STEPS (default 5000, 2 fs each) and OUT (default out/) may be set in the environment.
set -euo pipefail
cd "$(dirname "$0")"
STEPS=${STEPS:-5000}
OUT=${OUT:-out}
FRAMES=$((STEPS / 5))  # written every 5 steps; equilibration and block lengths scale with the run
MODEL=../../models/cuau-emt-demo
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

python make_structures.py "$OUT"
# crystal: 300 K, NVE after Maxwell-Boltzmann velocities (no thermostat noise in the VDOS)
mlpot md --model $MODEL --structure "$OUT/cu3au-crystal.xyz" --ensemble nve --temperature 600 \
         --timestep 2 --steps "$STEPS" --interval 5 --output "$OUT/crystal.xyz"
# melt: ASE's EMT (the demo potential has no short-range repulsion; see melt_emt.py)
python melt_emt.py "$OUT" "$STEPS"

mlpot analyze "$OUT/crystal.xyz" -o "$OUT/crystal-analysis" --skip $((FRAMES / 20)) --window $((FRAMES / 5))
mlpot analyze "$OUT/melt.xyz" -o "$OUT/melt-analysis" --skip $((FRAMES / 5)) --window $((FRAMES / 5)) --sqw-q 1.5 3.0 \
              --compare "$OUT/crystal-analysis/sq.csv" --compare-with sq-neutron
mlpot phonons --model $MODEL --structure "$OUT/cu3au-cell.xyz" -o "$OUT/phonons" --relax
