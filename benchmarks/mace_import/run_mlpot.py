"""The mlpot side: the file written by ``mlpot import mace`` through mlpot's ASE calculator.

MLPotCalculator's defaults: the fused CPU kernels where the compiled library is present, and glibc's
malloc told to keep freed memory (mlpot.allocator.keep_freed_memory), as every mlpot user gets them.
Run with mlpot's environment, one thread (OMP_NUM_THREADS=1); run.py does both.
"""

from measure import measure, parse_args

args = parse_args()

import mlpot  # noqa: E402
from mlpot.calculators import MLPotCalculator  # noqa: E402


def make_calculator(model_path: str, dtype: str) -> MLPotCalculator:
    calc = MLPotCalculator(model_path, dtype=dtype)
    if not calc.fused:
        raise RuntimeError("mlpot's fused CPU kernels are not available: build them before benchmarking")
    return calc


measure("mlpot", mlpot.__version__, make_calculator, args)
