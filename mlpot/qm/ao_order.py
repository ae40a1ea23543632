"""Atomic-orbital order: PySCF's real spherical AOs against e3nn's irreps components.

PySCF orders a p shell as (x, y, z) and every other shell by m = -l..l of the real solid
harmonics with z as the polar axis. e3nn's l = 1 components are also (x, y, z), but for l >= 2
e3nn takes y as the polar axis, so the two bases differ by the Wigner matrix of the cyclic axis
permutation v -> (v_y, v_z, v_x) (found by fitting PySCF's AO values to e3nn's harmonics, and
checked by rotating molecules through PySCF in tests/test_qm.py):

    phi_pyscf(l) = U_l phi_e3nn(l),   U_1 = 1,   U_l = D^l(cycle) otherwise.

An orbital block B built in e3nn's basis is ``U_l1 B U_l2^T`` in PySCF's, and a matrix over AOs
transforms under an O(3) element R as ``H(R x) = D H(x) D^T`` with D from :func:`ao_wigner_d`.
"""

import functools
from typing import List, Sequence

import torch

from mlpot.nn.irreps import l_slice, wigner_d

_CYCLE = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)


def pyscf_from_e3nn(l: int) -> torch.Tensor:
    """U_l [2l+1, 2l+1] (float64, orthogonal): PySCF's degree-l AOs in terms of e3nn's components."""
    return _pyscf_from_e3nn(l).clone()


@functools.lru_cache(maxsize=None)
def _pyscf_from_e3nn(l: int) -> torch.Tensor:
    if l == 1:
        return torch.eye(3, dtype=torch.float64)
    return wigner_d(l, _CYCLE)[l_slice(l), l_slice(l)]


def ao_wigner_d(shells: Sequence[int], rotation: torch.Tensor) -> torch.Tensor:
    """Block-diagonal D [n_ao, n_ao] (float64) of an O(3) element for AOs of ``shells`` (l per
    shell, PySCF's order), so that a matrix over these AOs maps as ``D @ H @ D.T``."""
    lmax = max(shells) if len(shells) else 0
    full = wigner_d(lmax, rotation.to(torch.float64))  # e3nn basis, parity det^l included
    blocks: List[torch.Tensor] = []
    for l in shells:
        u = pyscf_from_e3nn(l)
        blocks.append(u @ full[l_slice(l), l_slice(l)] @ u.T)
    return torch.block_diag(*blocks)
