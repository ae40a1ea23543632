"""Builds mlpot's CPU kernel library (fused edge tensor product and symmetric contraction); everything else about the package is in pyproject.toml.

The library has a plain C ABI (no libtorch headers), so it is built once per install whatever
torch is present, and loaded with ctypes. ``optional=True``: without a C++ compiler the install
still succeeds and mlpot runs its reference path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "mlpot.kernels._cpu_kernels",
            sources=["mlpot/kernels/edge_tp_cpu.cpp", "mlpot/kernels/symmetric_cpu.cpp"],
            language="c++",
            extra_compile_args=["-O3", "-fopenmp", "-std=c++17", "-fvisibility=hidden"],
            extra_link_args=["-fopenmp"],
            optional=True,
        )
    ]
)
