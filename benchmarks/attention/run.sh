#!/usr/bin/env bash
# MACE vs attention interaction on rMD17 ethanol and aspirin: equal parameters (within 10 %),
# equal wall time (20 min each), trained at the same time, one thread each; then test errors,
# speed per call and peak memory of both.
#
#   benchmarks/attention/run.sh WORKDIR [MINUTES] [MOLECULES...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mkdir -p "$1" && cd "$1" && pwd)
minutes=${2:-20}
shift $(( $# >= 2 ? 2 : 1 ))
molecules=${*:-ethanol aspirin}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for molecule in $molecules; do
  dir="$work/$molecule"
  python "$here/../rmd17_ethanol/prepare_data.py" "$dir" --molecule "$molecule"
  pids=()
  for kind in mace attention; do
    mlpot train "$here/$kind.yaml" --set "data.train=$dir/train.xyz" --set "data.valid=$dir/valid.xyz" \
      --set "data.test=$dir/test.xyz" --set "output.directory=$dir/$kind-run" \
      --set "training.max_time_minutes=$minutes" > "$dir/$kind-train.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  for kind in mace attention; do
    python "$here/speed.py" "$dir/$kind-run/best.model" "$dir/test.xyz" > "$dir/$kind-speed.json"
  done
done
python "$here/report.py" "$work" $molecules
