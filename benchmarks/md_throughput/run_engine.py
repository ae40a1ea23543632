"""One MD throughput measurement: ASE velocity Verlet with one package's ASE calculator.

    python run_engine.py mlpot SYSTEM STEPS          (mlpot's environment)
    python run_engine.py mace SYSTEM STEPS           (mace-torch's, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1)

Untrained models of matched size (64x0e+64x1o, max_ell 3, correlation 3, 2 interactions,
r_max 5, radial MLP [64, 64, 64], float64, elements H C O); throughput does not depend on the
weights. Prints one JSON line: seconds per step (median over the timed steps), steps/s, ns/day
at 0.5 fs, peak RSS.
"""

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "potential_speed"))
from systems import ELEMENTS, R_MAX, SYSTEMS, get_system, water_box  # noqa: E402

SYSTEMS.setdefault("water1029", lambda: water_box(7))  # 7^3 molecules, the ~1000-atom box

engine, system, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
WARMUP = 3
TIMESTEP_FS = 0.5

import torch  # noqa: E402
from ase import units  # noqa: E402
from ase.md import velocitydistribution  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402

atoms = get_system(system)
neighbours = None


def mlpot_calculator():
    import mlpot
    from mlpot.calculators import MLPotCalculator
    from mlpot.data.statistics import average_num_neighbors

    config = {"elements": ELEMENTS, "r_max": R_MAX, "hidden_irreps": "64x0e+64x1o", "max_ell": 3, "correlation": 3,
              "num_interactions": 2, "radial_mlp": [64, 64, 64], "avg_num_neighbors": average_num_neighbors([atoms], R_MAX)}
    torch.manual_seed(0)
    path = Path(tempfile.mkdtemp()) / "m.model"
    mlpot.save_model(mlpot.build_model(config), path)
    return MLPotCalculator(path, dtype="float64")  # its default neighbour skin (0.5 Å)


def mace_calculator():
    from ase.data import atomic_numbers
    from e3nn import o3
    from mace import modules
    from mace.calculators import MACECalculator
    from matscipy.neighbours import neighbour_list

    zs = [atomic_numbers[s] for s in ELEMENTS]
    edges = len(neighbour_list("i", atoms, R_MAX)) if atoms.pbc.any() else len(neighbour_list("i", positions=atoms.positions, cutoff=R_MAX))
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    model = modules.ScaleShiftMACE(
        r_max=R_MAX, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=2, num_elements=len(zs), hidden_irreps=o3.Irreps("64x0e+64x1o"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(len(zs)), avg_num_neighbors=edges / len(atoms),
        atomic_numbers=zs, correlation=3, gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64],
        radial_type="bessel", atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    )
    path = Path(tempfile.mkdtemp()) / "m.model"
    torch.save(model, path)
    return MACECalculator(model_paths=str(path), device="cpu", default_dtype="float64")


# ASE 3.29 renamed MaxwellBoltzmannDistribution to thermalize_momenta (same arguments).
thermalize = getattr(velocitydistribution, "thermalize_momenta", None) or velocitydistribution.MaxwellBoltzmannDistribution
torch.set_num_threads(1)
atoms.calc = mlpot_calculator() if engine == "mlpot" else mace_calculator()
thermalize(atoms, temperature_K=300, rng=np.random.default_rng(0))
dynamics = VelocityVerlet(atoms, TIMESTEP_FS * units.fs)
dynamics.run(WARMUP)
times = []
for _ in range(steps):
    start = time.perf_counter()
    dynamics.run(1)
    times.append(time.perf_counter() - start)
seconds = float(np.median(times))
print(json.dumps({
    "engine": engine, "system": system, "atoms": len(atoms), "steps": steps, "s_per_step": seconds,
    "steps_per_s": 1 / seconds, "ns_per_day": TIMESTEP_FS * 1e-6 / seconds * 86400,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
