#!/usr/bin/env bash
# PBE/def2-SVP H and S for every benchmark structure (resumable: rerun to finish).
set -euo pipefail
cd "$(dirname "$0")"
WORKERS=${WORKERS:-2}
for set in water_train water_test water_extra ethanol_train ethanol_test; do
    mlpot data qm --structures structures/$set.xyz --method pbe --basis def2-svp -o data/$set --workers "$WORKERS"
done
