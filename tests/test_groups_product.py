"""MACE's product block with bases from the group layer spans the same functions as today's."""

import torch

from mlpot.groups.product import o3_product_basis
from mlpot.nn.irreps import FeatureIrreps, l_slice
from mlpot.nn.product import SymmetricContraction, independent_basis

LMAX = 2


def _on_monomials(monomials, basis, all_monomials):
    """basis [P, D_out, M] on ``monomials`` re-expressed on ``all_monomials``: [P, D_out, M_all]."""
    position = {key: i for i, key in enumerate(all_monomials)}
    out = torch.zeros(basis.shape[0], basis.shape[1], len(all_monomials), dtype=torch.float64)
    out[:, :, [position[tuple(key)] for key in monomials]] = basis.to(torch.float64)
    return out


def test_group_bases_span_the_default_bases_per_output_irrep():
    for degree in (1, 2, 3):
        default_monomials, default = independent_basis(LMAX, LMAX, degree)
        group_monomials, group = o3_product_basis(LMAX, LMAX, degree)
        union = sorted(set(map(tuple, default_monomials)) | set(map(tuple, group_monomials)))
        default = _on_monomials(default_monomials, default, union)
        group = _on_monomials(group_monomials, group, union)
        for lo in range(LMAX + 1):
            a = default[:, l_slice(lo)].reshape(len(default), -1)
            b = group[:, l_slice(lo)].reshape(len(group), -1)
            a, b = a[a.abs().amax(dim=1) > 1e-12], b[b.abs().amax(dim=1) > 1e-12]  # paths of this lo
            rank = torch.linalg.matrix_rank(torch.cat([a, b]), atol=1e-9).item()
            ranks = [torch.linalg.matrix_rank(m, atol=1e-9).item() for m in (a, b)]
            assert len(b) == ranks[0] == ranks[1] == rank, (degree, lo)


def _path_features(block: SymmetricContraction, x: torch.Tensor) -> torch.Tensor:
    """Every path's output on every node and channel: [C, n, P, D_out] (the block is linear in its weights)."""
    monomials = block.monomials(x.permute(2, 0, 1))  # [C, n, M]
    return torch.einsum("cnm,pdm->cnpd", monomials, block.basis)


def test_product_block_from_group_layer_fits_todays_outputs():
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        irreps = FeatureIrreps(channels=3, lmax=LMAX)
        today = SymmetricContraction(irreps, irreps, correlation=3, num_elements=2)
        grouped = SymmetricContraction(irreps, irreps, correlation=3, num_elements=2, basis=o3_product_basis)
        counts = [40, 40]  # nodes of element 0, then of element 1
        x = torch.randn(sum(counts), irreps.dim, irreps.channels)
        with torch.no_grad():
            target = today(x, counts)  # [n, D, C]
            features = _path_features(grouped, x)  # [C, n, P, D]
            fitted = torch.zeros_like(grouped.weight)  # [Z, P, C]
            start = 0
            for z, count in enumerate(counts):
                for c in range(irreps.channels):
                    design = features[c, start : start + count].permute(0, 2, 1).reshape(-1, grouped.num_paths)  # [n_z*D, P]
                    fitted[z, :, c] = torch.linalg.lstsq(design, target[start : start + count, :, c].reshape(-1, 1)).solution[:, 0]
                start += count
            grouped.weight.copy_(fitted)
            for fused in (False, True):
                grouped.fused = fused
                output = grouped(x, counts)
                assert ((output - target).abs().max() / target.abs().max()).item() < 1e-9
            fresh = torch.randn_like(x)  # the fitted weights carry over to other inputs: same functions
            assert ((grouped(fresh, counts) - today(fresh, counts)).abs().max() / today(fresh, counts).abs().max()).item() < 1e-9
    finally:
        torch.set_default_dtype(previous)
