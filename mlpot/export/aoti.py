"""AOTInductor export: a compiled model package (.pt2) that runs without Python's mlpot.

The package holds the same function as the TorchScript export for LAMMPS
(:class:`mlpot.export.lammps.LAMMPSPotential`: positions [N, 3], atomic numbers [N], edge_index
[2, E], shifts [E, 3], local mask [N] -> energy, per-atom energy, forces, virial, per-atom
virial), compiled ahead of time by TorchInductor into a shared library inside a zip archive,
for any number of atoms and edges.

Forces come from autograd, which torch.export cannot trace inside a forward. As NequIP does for
its AOTInductor packages, the forward *and* its gradient are first traced together by ``make_fx``
(symbolic shapes) into one graph of ATen operations, and that graph is exported
(``torch.export``, atoms and edges dynamic) and compiled (``aoti_compile_and_package``). The
model's per-element grouping gives data-dependent sizes (the count of atoms of each element);
they are traced as unbacked sizes, the model's modules taking the branch-free path while
``torch.compiler.is_compiling()``.

With the fused kernels (the default where mlpot's CPU library is built) the package calls
``mlpot::edge_tp`` and ``mlpot::symmetric`` through torch's dispatcher, so a process must register
them before running it: the LAMMPS plugin does; a Python process loads ``libmlpot_ops.so``
(:mod:`mlpot.export.ops_library`). ``kernel="reference"`` compiles plain torch operations only.

    import torch
    torch.ops.load_library(".../libmlpot_ops.so")          # fused packages only
    model = torch._inductor.aoti_load_package("M.pt2")
    energy, node_energy, forces, virial, atom_virial = model(positions, numbers, edge_index, shifts, local_mask)

The package's metadata (``model.get_metadata()``) holds the LAMMPS export's records (elements,
r_max, num_interactions, dtype, kernel, mlpot_version, dispersion), ``format`` ``mlpot-aoti/1``
and ``outputs`` (the names of the outputs in order).
"""

import contextlib
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple, Union

import torch
from torch import nn

from mlpot.config import DTYPES
from mlpot.files import atomic_output

FORMAT = "mlpot-aoti/1"
OUTPUTS = ("energy", "node_energy", "forces", "virial", "atom_virial")


@contextlib.contextmanager
def _tracing_for_export() -> Iterator[None]:
    """What torch.export sets while it traces (``torch.compiler.is_compiling()`` is True, so the
    model calls its registered operators and branches on no count), plus no duck shaping: make_fx
    must not identify the number of atoms or edges with an equal static size."""
    from torch._export.utils import _compiling_state_context
    from torch.fx.experimental import _config

    duck_shape = _config.use_duck_shape
    _config.use_duck_shape = False
    try:
        with _compiling_state_context():
            yield
    finally:
        _config.use_duck_shape = duck_shape


def example_inputs(atomic_numbers: List[int], r_max: float, per_element: int, dtype: torch.dtype, seed: int) -> Tuple[torch.Tensor, ...]:
    """A random cluster with ``per_element`` atoms of every element (plus one) inside one cutoff
    sphere, all pairs closer than ``r_max`` as edges, the first half local: the tracing input."""
    generator = torch.Generator().manual_seed(seed)
    numbers = torch.tensor(list(atomic_numbers) * per_element + [atomic_numbers[0]], dtype=torch.long)  # [N]
    positions = (torch.rand(len(numbers), 3, generator=generator, dtype=torch.float64) - 0.5) * r_max  # [N, 3]
    distances = torch.cdist(positions, positions)
    receiver, sender = torch.nonzero((distances < r_max) & (distances > 0), as_tuple=True)
    edge_index = torch.stack([sender, receiver])  # [2, E]
    local_mask = torch.arange(len(numbers)) < (len(numbers) + 1) // 2  # [N]
    return positions.to(dtype), numbers, edge_index, torch.zeros(edge_index.shape[1], 3, dtype=dtype), local_mask


class _OutputList(nn.Module):
    """LAMMPSPotential with its outputs as a tuple in OUTPUTS order (what a package returns)."""

    def __init__(self, potential: nn.Module) -> None:
        super().__init__()
        self.potential = potential

    def forward(self, *inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.potential(*inputs)
        return tuple(out[name] for name in OUTPUTS)


def export_aoti(
    model: nn.Module, path: Union[str, Path], dtype: str = "float64", kernel: str = "auto", without_dispersion: bool = False
) -> Path:
    """Compile ``model`` (a potential or a committee, as its mean) into an AOTInductor package at
    ``path`` (atomically); arguments as in :func:`mlpot.export.lammps.export_lammps`. Takes minutes
    on a CPU: TorchInductor generates and compiles C++ for the whole forward and backward."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from mlpot.export.lammps import prepare_for_export

    potential, metadata = prepare_for_export(model, dtype, kernel, without_dispersion)
    metadata = dict(metadata, format=FORMAT, outputs=" ".join(OUTPUTS))
    wrapped = _OutputList(potential).eval()
    numbers = potential.potential.atomic_numbers.tolist()
    r_max = float(potential.potential.r_max)
    trace_inputs = example_inputs(numbers, r_max, 2, DTYPES[dtype], seed=1)
    with _tracing_for_export():
        graph = make_fx(wrapped, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*trace_inputs)
    atoms, edges = torch.export.Dim("atoms", min=1), torch.export.Dim("edges", min=0)  # a lone atom too
    exported = torch.export.export(
        graph, trace_inputs, dynamic_shapes=({0: atoms}, {0: atoms}, {1: edges}, {0: edges}, {0: atoms}), strict=False
    )
    lone_atom = (torch.zeros(1, 3, dtype=DTYPES[dtype]), torch.tensor(numbers[:1]), torch.zeros(2, 0, dtype=torch.long),
                 torch.zeros(0, 3, dtype=DTYPES[dtype]), torch.ones(1, dtype=torch.bool))
    with tempfile.TemporaryDirectory() as scratch:  # checked before it is published at ``path``
        compiled = Path(scratch) / "model.pt2"
        torch._inductor.aoti_compile_and_package(exported, package_path=str(compiled), inductor_configs={"aot_inductor.metadata": metadata})
        _check_package(compiled, wrapped, [example_inputs(numbers, r_max, 3, DTYPES[dtype], seed=2), lone_atom])
        path = Path(path)
        with atomic_output(path, "wb") as stream:
            stream.write(compiled.read_bytes())
    return path


def _check_package(path: Path, wrapped: nn.Module, cases: List[Tuple[torch.Tensor, ...]]) -> None:
    """The package equals the model on other graph sizes (a size fixed in tracing would show)."""
    package = torch._inductor.aoti_load_package(str(path))
    for inputs in cases:
        tolerance = 1e-10 if inputs[0].dtype == torch.float64 else 1e-4
        for name, got, want in zip(OUTPUTS, package(*inputs), wrapped(*inputs)):
            if not torch.allclose(got, want, rtol=tolerance, atol=tolerance * float(want.abs().max().clamp(min=1.0))):
                raise RuntimeError(f"the compiled package's {name} differs from the model's by {float((got - want).abs().max()):.3g}")


def read_metadata(path: Union[str, Path]) -> Dict[str, str]:
    """The metadata records of an AOTInductor package (loads it: fused packages need the
    operators registered, as they are in a process that imported mlpot)."""
    return dict(torch._inductor.aoti_load_package(str(path)).get_metadata())
