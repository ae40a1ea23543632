"""Where each atom's orbitals sit: per-element shells, padded blocks and dense matrices.

A Hamiltonian (or overlap) matrix over the AOs of a molecule is split into blocks: one
diagonal block per atom and one off-diagonal block per directed edge (receiver i, sender j),
``H[AOs of i, AOs of j]``. Every block is stored padded to ``[O, O]`` with O the largest AO count
of any element, so blocks of different atoms batch as one tensor; the padding is zero and
:meth:`OrbitalLayout.mask` says which rows are real.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
from ase.data import atomic_numbers as symbol_to_z
from ase.data import chemical_symbols

from mlpot.errors import MLPotError


@dataclass(frozen=True)
class OrbitalLayout:
    """Shells (l of each, in AO order) of every element, keyed by atomic number."""

    shells: Dict[int, Tuple[int, ...]]

    @staticmethod
    def from_symbols(shells: Dict[str, Sequence[int]]) -> "OrbitalLayout":
        return OrbitalLayout({symbol_to_z[symbol]: tuple(int(l) for l in ls) for symbol, ls in shells.items()})

    def symbols(self) -> Dict[str, List[int]]:
        return {chemical_symbols[z]: list(ls) for z, ls in sorted(self.shells.items())}

    def num_orbitals(self, z: int) -> int:
        if z not in self.shells:
            raise MLPotError(f"element {chemical_symbols[z]} has no basis in this layout ({', '.join(self.symbols())})")
        return sum(2 * l + 1 for l in self.shells[z])

    @property
    def max_orbitals(self) -> int:
        return max(self.num_orbitals(z) for z in self.shells)

    def offsets(self, numbers: Sequence[int]) -> np.ndarray:
        """First AO of each atom, plus the total, [N + 1]."""
        return np.concatenate([[0], np.cumsum([self.num_orbitals(int(z)) for z in numbers])]).astype(np.int64)

    def mask(self, numbers: Sequence[int]) -> np.ndarray:
        """[N, O] 1.0 on each atom's real orbitals, 0.0 on the padding."""
        counts = np.array([self.num_orbitals(int(z)) for z in numbers])
        return (np.arange(self.max_orbitals)[None, :] < counts[:, None]).astype(np.float64)

    def _block_positions(self, numbers: Sequence[int], edge_index: np.ndarray) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """For the diagonal blocks (M = N) and the edge blocks (M = E): row AO indices, column AO
        indices and the mask of real entries, each [M, O, O]. Edge block e covers
        H[AOs of receiver i, AOs of sender j]."""
        size = self.max_orbitals
        mask = self.mask(numbers).astype(bool)  # [N, O]
        index = np.where(mask, self.offsets(numbers)[:-1, None] + np.arange(size)[None, :], 0)  # [N, O] AO of each slot

        def positions(row_atoms: np.ndarray, col_atoms: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
            shape = (len(row_atoms), size, size)
            rows = np.broadcast_to(index[row_atoms][:, :, None], shape)
            cols = np.broadcast_to(index[col_atoms][:, None, :], shape)
            return rows, cols, mask[row_atoms][:, :, None] & mask[col_atoms][:, None, :]

        atoms = np.arange(len(numbers))
        return [positions(atoms, atoms), positions(edge_index[1], edge_index[0])]

    def to_blocks(self, matrix: np.ndarray, numbers: Sequence[int], edge_index: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Dense [n_ao, n_ao] -> (diagonal blocks [N, O, O], edge blocks [E, O, O]), zero-padded.

        ``edge_index`` [2, E] holds (sender j, receiver i); edge block e is H[AOs of i, AOs of j].
        """
        n_ao = self.offsets(numbers)[-1]
        if matrix.shape != (n_ao, n_ao):
            raise ValueError(f"matrix of shape {matrix.shape} does not fit {n_ao} orbitals")
        (node, edge) = (np.where(inside, matrix[rows, cols], 0.0) for rows, cols, inside in self._block_positions(numbers, edge_index))
        return node, edge

    def to_matrix(self, node: np.ndarray, edge: np.ndarray, numbers: Sequence[int], edge_index: np.ndarray) -> np.ndarray:
        """Blocks -> dense matrix; atom pairs without an edge (beyond the cutoff) stay zero."""
        n_ao = self.offsets(numbers)[-1]
        matrix = np.zeros((n_ao, n_ao))
        for blocks, (rows, cols, inside) in zip((node, edge), self._block_positions(numbers, edge_index)):
            matrix[rows[inside], cols[inside]] = blocks[inside]
        return matrix
