"""The active-learning benchmark's results.json as markdown tables.

    python benchmarks/active_learning/report.py WORKDIR/results.json
"""

import json
import sys


def main(path: str) -> None:
    results = json.loads(open(path).read())
    print("| arm | cycle | training frames | test force MAE / RMSE / 99th pct (meV/Å) | test energy MAE (meV) | Spearman(spread, error) | MD max spread before (eV/Å) | training s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for arm in ("active", "random"):
        for row in results[arm]:
            md = f"{row['md_max_force_std']:.3f}" if "md_max_force_std" in row else "-"
            print(f"| {arm} | {row['cycle']} | {row['train_frames']} | {row['test_forces_mae_mev_per_a']:.1f} / {row['test_forces_rmse_mev_per_a']:.1f} / "
                  f"{row['test_force_error_p99_mev_per_a']:.0f} | "
                  f"{row['test_energy_mae_mev']:.2f} | {row['spearman_force_spread_vs_error']:.3f} | {md} | {row['train_seconds']:.0f} |")
    timing = results["fine_tune_vs_scratch"]
    print()
    print(f"member 0 on the last active set ({timing['train_frames']} frames), to a validation force MAE of "
          f"{timing['target_valid_forces_mae_mev_per_a']:.2f} meV/Å: fine-tuning {timing['fine_tune_last_cycle_seconds']:.0f} s "
          f"(all cycles from scratch on 50 frames: {timing['fine_tune_all_cycles_seconds']:.0f} s), from scratch "
          f"{timing['scratch_seconds']:.0f} s (best {timing['scratch_best_valid_forces_mae_mev_per_a']:.2f} meV/Å in "
          f"{timing['scratch_epochs']} epochs)")


if __name__ == "__main__":
    main(sys.argv[1])
