"""Names of choices shared by the command line and the library.

Standard library only: the ``mlpot`` parsers offer these as ``choices`` without loading torch,
so ``mlpot COMMAND --help`` stays instant. The modules that act on the names import them from here.
"""

KERNELS = ("auto", "fused", "reference")  # execution paths, see mlpot.kernels.set_kernels
DTYPE_NAMES = ("float32", "float64")  # floating-point types of a model, see mlpot.config.DTYPES
