#!/usr/bin/env bash
# Path-integral MD of ethanol with the shipped model: i-PI (server) and mlpot ipi (client) over a
# UNIX socket. Usage: examples/ipi_ethanol/run.sh [WORK_DIRECTORY (default ipi-ethanol)]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${1:-ipi-ethanol}"
command -v i-pi >/dev/null || { echo "run.sh: i-pi is not installed; install the 'ipi' extra: pip install 'mlpot[ipi]'" >&2; exit 2; }
mkdir -p "$work" && cd "$work"
cp "$here/input.xml" "$here/../structures/ethanol.xyz" .
i-pi input.xml > ipi.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
mlpot ipi --model "$here/../../models/ethanol-rmd17" --address unix:mlpot-ethanol --structure ethanol.xyz --timeout 60
wait "$server"
echo "i-PI finished; last lines of $work/ethanol.out (step, time/ps, conserved/eV, T/K, kinetic_cv/eV, potential/eV):"
tail -n 3 ethanol.out
