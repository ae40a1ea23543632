#!/usr/bin/env bash
# The whole Hamiltonian benchmark: structures, PBE/def2-SVP data, training, evaluation.
# Every step resumes or skips what is done; results land in results/.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1
[ -f structures/ethanol_test.xyz ] || python make_structures.py
./generate.sh
mkdir -p results
for molecule in water ethanol; do
    mlpot train $molecule.yaml
    mlpot eval --model runs/$molecule/best.model --data data/${molecule}_test --plots results/$molecule \
        | tee results/$molecule.txt
done
