"""Feature layout shared by every equivariant block.

mlpot stores equivariant features as a dense tensor ``[n, D, C]``: C channels, each carrying
every irrep l = 0..lmax with natural parity (0e, 1o, 2e, 3o, ...), D = (lmax + 1)^2 components
ordered l-major and, within l, in e3nn's real-spherical-harmonic order (with e3nn >= 0.6, l = 1 is
(x, y, z): its Wigner matrix is the rotation matrix itself; e3nn 0.5 used (y, z, x)).
Equal multiplicity for every l turns each tensor product into a few large batched matmuls
instead of many small per-path kernels; that is where the speed comes from.

``Irreps`` strings are accepted where users expect them ("128x0e+128x1o" is channels 128,
lmax 1) and converted with :meth:`FeatureIrreps.parse`.
"""

from dataclasses import dataclass
from typing import List

import torch
from e3nn import o3

from mlpot.errors import MLPotError


@dataclass(frozen=True)
class FeatureIrreps:
    """C channels of the natural-parity irreps l = 0..lmax."""

    channels: int
    lmax: int

    @property
    def dim(self) -> int:
        """Number of components D per channel."""
        return (self.lmax + 1) ** 2

    def irreps(self) -> o3.Irreps:
        return o3.Irreps([(self.channels, (l, (-1) ** l)) for l in range(self.lmax + 1)])

    def __str__(self) -> str:
        return str(self.irreps())

    @staticmethod
    def parse(text: str) -> "FeatureIrreps":
        """'128x0e+128x1o' -> FeatureIrreps(128, 1); other shapes are a user error."""
        try:
            irreps = o3.Irreps(text).simplify()
        except (ValueError, AssertionError) as error:
            raise MLPotError(f"hidden_irreps {text!r} is not an irreps string ({error})") from None
        muls = {mul for mul, _ in irreps}
        ls = [ir.l for _, ir in irreps]
        parities_natural = all(ir.p == (-1) ** ir.l for _, ir in irreps)
        if len(muls) != 1 or ls != list(range(len(ls))) or not parities_natural:
            raise MLPotError(
                f"hidden_irreps {text!r} must give every l = 0..lmax once with the same multiplicity "
                "and natural parity, e.g. '128x0e+128x1o'"
            )
        return FeatureIrreps(channels=muls.pop(), lmax=ls[-1])


def component_degrees(lmax: int) -> torch.Tensor:
    """l of each of the (lmax + 1)^2 components, [D]."""
    return torch.cat([torch.full((2 * l + 1,), l, dtype=torch.long) for l in range(lmax + 1)])


def l_slice(l: int) -> slice:
    """Components of degree l inside a [.., D, ..] feature."""
    return slice(l * l, (l + 1) * (l + 1))


def wigner_d(lmax: int, rotation: torch.Tensor) -> torch.Tensor:
    """Block-diagonal representation matrix [D, D] of an O(3) element for the layout above.

    ``rotation`` is a 3x3 orthogonal matrix (det -1 for reflections); natural parity means the
    l block picks up det^l. Features transform as ``x' = D @ x`` along the component axis.
    """
    # e3nn builds its generators in the default dtype; insist on float64 for exact tests.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        rotation64 = rotation.to(torch.float64)
        blocks: List[torch.Tensor] = [o3.Irrep(l, (-1) ** l).D_from_matrix(rotation64) for l in range(lmax + 1)]
    finally:
        torch.set_default_dtype(previous)
    return torch.block_diag(*blocks).to(rotation.dtype)
