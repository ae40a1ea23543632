"""Reusable symmetry and physics checks, shared by every block and model test.

Blocks act on ``[n, D, C]`` features (see mlpot.nn.irreps); models act on structures and are
checked through :func:`evaluate`, which returns energy, forces and stress for ASE ``Atoms``.
"""

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from ase import Atoms
from e3nn import o3
from torch_geometric.data import Batch

from mlpot.data.graph import atoms_to_graph, graph_to_inputs
from mlpot.nn.irreps import wigner_d


def random_o3(seed: int, reflect: bool) -> torch.Tensor:
    """A random rotation, times -1 (a reflection through the origin) when ``reflect``."""
    torch.manual_seed(seed)
    rotation = o3.rand_matrix(dtype=torch.float64)
    return -rotation if reflect else rotation


def rotate_features(x: torch.Tensor, lmax: int, rotation: torch.Tensor) -> torch.Tensor:
    """Apply an O(3) element to ``[n, (lmax+1)^2, C]`` features."""
    return torch.einsum("ij,njc->nic", wigner_d(lmax, rotation).to(x.dtype), x)


def assert_block_equivariant(
    block: Callable[..., torch.Tensor],
    features: Sequence[torch.Tensor],
    lmax_in: Sequence[int],
    lmax_out: int,
    extra: Sequence = (),
    atol: Optional[float] = None,
) -> None:
    """block(*features, *extra) commutes with random rotations and reflections.

    Each feature tensor i carries irreps 0..lmax_in[i]; the output carries 0..lmax_out.
    """
    dtype = features[0].dtype
    atol = atol if atol is not None else (1e-10 if dtype == torch.float64 else 1e-4)
    out = block(*features, *extra)
    for seed, reflect in [(0, False), (1, True), (2, True)]:
        rotation = random_o3(seed, reflect)
        rotated_in = [rotate_features(x, l, rotation) for x, l in zip(features, lmax_in)]
        expected = rotate_features(out, lmax_out, rotation)
        torch.testing.assert_close(block(*rotated_in, *extra), expected, atol=atol, rtol=0)


def evaluate(model: torch.nn.Module, structures: List[Atoms], stress: bool = False) -> Dict[str, np.ndarray]:
    """Energy [B], forces [N, 3], per-atom energies and (stress=True) stress [B, 3, 3] of a batch."""
    dtype = next(model.parameters()).dtype
    graphs = [atoms_to_graph(atoms, model.r_max, dtype=dtype) for atoms in structures]
    out = model(graph_to_inputs(Batch.from_data_list(graphs)), compute_forces=True, compute_stress=stress)
    return {key: value.detach().numpy() for key, value in out.items()}


def assert_model_symmetric(model: torch.nn.Module, atoms: Atoms, atol: float = 1e-9) -> None:
    """Energy invariant and forces equivariant under O(3) (with reflections), translations and
    permutations of the atoms; stress transforms as R S R^T when the cell is periodic."""
    periodic = bool(atoms.pbc.all())
    reference = evaluate(model, [atoms], stress=periodic)
    for seed, reflect in [(0, False), (1, True)]:
        rotation = random_o3(seed, reflect).numpy()
        moved = atoms.copy()
        moved.positions = atoms.positions @ rotation.T + np.array([0.3, -1.7, 2.9])
        moved.cell = atoms.cell.array @ rotation.T
        result = evaluate(model, [moved], stress=periodic)
        np.testing.assert_allclose(result["energy"], reference["energy"], atol=atol, rtol=0)
        np.testing.assert_allclose(result["forces"], reference["forces"] @ rotation.T, atol=atol, rtol=0)
        if periodic:
            expected = rotation @ reference["stress"][0] @ rotation.T
            np.testing.assert_allclose(result["stress"][0], expected, atol=atol, rtol=0)
    permutation = np.random.default_rng(0).permutation(len(atoms))
    shuffled = atoms[permutation]
    result = evaluate(model, [shuffled])
    np.testing.assert_allclose(result["energy"], reference["energy"], atol=atol, rtol=0)
    np.testing.assert_allclose(result["forces"], reference["forces"][permutation], atol=atol, rtol=0)
    np.testing.assert_allclose(result["node_energy"], reference["node_energy"][permutation], atol=atol, rtol=0)


def assert_forces_are_gradients(model: torch.nn.Module, atoms: Atoms, delta: float = 1e-4, atol: float = 1e-7) -> None:
    """Forces equal central finite differences of the energy, component by component."""
    forces = evaluate(model, [atoms])["forces"]
    numeric = np.zeros_like(forces)
    for i in range(len(atoms)):
        for k in range(3):
            energies = []
            for sign in (1, -1):
                displaced = atoms.copy()
                displaced.positions[i, k] += sign * delta
                energies.append(evaluate(model, [displaced])["energy"][0])
            numeric[i, k] = -(energies[0] - energies[1]) / (2 * delta)
    np.testing.assert_allclose(forces, numeric, atol=atol, rtol=0)


def assert_stress_is_strain_derivative(model: torch.nn.Module, atoms: Atoms, delta: float = 1e-5, atol: float = 1e-8) -> None:
    """stress = (1/V) dE/d(strain), by central differences of symmetric strains of the cell."""
    stress = evaluate(model, [atoms], stress=True)["stress"][0]
    numeric = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += 0.5 * sign * delta
                strain[b, a] += 0.5 * sign * delta
                strained = atoms.copy()
                strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
                energies.append(evaluate(model, [strained])["energy"][0])
            numeric[a, b] = (energies[0] - energies[1]) / (2 * delta) / atoms.get_volume()
    np.testing.assert_allclose(stress, numeric, atol=atol, rtol=0)
