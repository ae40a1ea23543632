#!/usr/bin/env bash
# rMD17 ethanol: mlpot and mace-torch trained side by side, at the same time, one thread each,
# each under the same wall-time budget, then both evaluated on the 1000 test frames.
#
#   MACE_VENV=/path/to/venv-with-mace-torch benchmarks/rmd17_ethanol/run.sh WORKDIR [MINUTES]
#
# mlpot comes from the current environment. mace-torch pins e3nn 0.4.4, so it lives in its own
# virtual environment (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 is needed there on torch 2.13).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mkdir -p "$1" && cd "$1" && pwd)
minutes=${2:-20}
: "${MACE_VENV:?set MACE_VENV to a virtual environment with mace-torch}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

python "$here/prepare_data.py" "$work"
cd "$work"

mace_args=(
  --name mace --seed 123 --device cpu --default_dtype float32
  --train_file train.xyz --valid_file valid.xyz --test_file test.xyz
  --energy_key REF_energy --forces_key REF_forces --E0s average
  --model MACE --hidden_irreps 64x0e+64x1o --r_max 5.0 --num_radial_basis 8 --num_cutoff_basis 5
  --max_ell 3 --correlation 3 --num_interactions 2 --radial_MLP "[64, 64, 64]" --MLP_irreps 16x0e
  --loss weighted --energy_weight 1 --forces_weight 100
  --batch_size 5 --valid_batch_size 10 --lr 0.01 --scheduler_patience 5
  --ema --ema_decay 0.99 --amsgrad --eval_interval 1 --error_table TotalMAE
  --swa --swa_energy_weight 1000 --swa_forces_weight 100 --swa_lr 0.001
)

# Place mace's stage two at 75 % of its budget, as mlpot's is: time one epoch first.
rm -rf mace-calibration
start=$(date +%s.%N)
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$MACE_VENV/bin/mace_run_train" "${mace_args[@]}" --max_num_epochs 2 --start_swa 100 \
  --checkpoints_dir mace-calibration/checkpoints --model_dir mace-calibration --results_dir mace-calibration/results \
  --log_dir mace-calibration/logs > mace-calibration.log 2>&1
seconds_per_epoch=$(python -c "import time; print((time.time() - $start) / 2)")
start_swa=$(python -c "print(max(1, int(0.75 * $minutes * 60 / $seconds_per_epoch)))")
echo "mace: ~$seconds_per_epoch s per epoch (with startup), stage two from epoch $start_swa"

# Both at once, so both see the same machine; each is killed at the budget if still running.
budget=$((minutes * 60))
timeout "$((budget + 120))" mlpot train "$here/mlpot.yaml" \
  --set "data.train=$work/train.xyz" --set "data.valid=$work/valid.xyz" --set "data.test=$work/test.xyz" \
  --set "output.directory=$work/mlpot-run" --set "training.max_time_minutes=$minutes" > mlpot-train.log 2>&1 &
mlpot_pid=$!
timeout "$budget" env TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$MACE_VENV/bin/mace_run_train" "${mace_args[@]}" \
  --max_num_epochs 100000 --start_swa "$start_swa" > mace-train.log 2>&1 || true
wait "$mlpot_pid"

# mace has no time budget: reload its last (best-validation) checkpoint and evaluate it.
last=$(ls checkpoints/ | sed -n 's/.*_epoch-\([0-9]*\).*\.pt$/\1/p' | sort -n | tail -1)
echo "mace: last checkpoint at epoch $last"
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$MACE_VENV/bin/mace_run_train" "${mace_args[@]}" \
  --max_num_epochs "$last" --start_swa "$start_swa" --restart_latest > mace-eval.log 2>&1

python "$here/report.py" "$work"
