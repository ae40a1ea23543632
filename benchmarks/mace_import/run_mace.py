"""The mace-torch side: the mace model file through mace's own ASE calculator (MACECalculator).

Run with mace-torch's environment and TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (e3nn 0.4.4 does not import
on this torch without it), one thread (OMP_NUM_THREADS=1); run.py does both. glibc's default malloc,
as a mace user gets it. MACECalculator converts the float64 file to float32 when asked for float32.
"""

from measure import measure, parse_args

args = parse_args()

from mace.__version__ import __version__ as mace_version  # noqa: E402
from mace.calculators import MACECalculator  # noqa: E402


def make_calculator(model_path: str, dtype: str) -> MACECalculator:
    return MACECalculator(model_paths=model_path, device="cpu", default_dtype=dtype)


measure("mace-torch", mace_version, make_calculator, args)
