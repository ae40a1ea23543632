#!/usr/bin/env bash
# PBE/def2-SVP H and S for the benchmark's structure sets (resumable: rerun to finish).
#   ./generate.sh                # the sets water.yaml and ethanol.yaml use
#   ./generate.sh water_extra    # the 2000 extra water geometries (make_structures.py --water-extra)
set -euo pipefail
cd "$(dirname "$0")"
WORKERS=${WORKERS:-2}
SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(water_train water_test ethanol_train ethanol_test)
for set in "${SETS[@]}"; do
    mlpot data qm --structures structures/$set.xyz --method pbe --basis def2-svp -o data/$set --workers "$WORKERS"
done
