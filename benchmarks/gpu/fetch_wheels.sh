#!/usr/bin/env bash
# Download, on a machine with a package index, the wheels that benchmarks/gpu/run.sh installs on
# a GPU machine that has torch, Triton, e3nn 0.6 and torch-geometric but no index: mlpot's missing
# dependencies in .whl/mlpot, mace-torch with its e3nn 0.4.4 and the rest of its needs in .whl/mace.
# .whl/ is ignored by git (add `/.whl/` to .git/info/exclude) and travels with `carry`.
set -euo pipefail
cd "$(dirname "$0")/../.."
get() {  # folder, then packages
  local folder=$1; shift
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d ".whl/$folder" "$@"
}
get mlpot ase==3.29.0 matscipy==1.3.1
get mace mace-torch==0.3.16 e3nn==0.4.4 ase==3.29.0 matscipy==1.3.1 configargparse gitpython gitdb smmap lmdb orjson \
  prettytable wcwidth torch-ema
du -sh .whl/*
