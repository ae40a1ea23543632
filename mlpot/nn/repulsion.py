"""ZBL screened nuclear repulsion between atom pairs (``model.pair_repulsion: zbl``).

Ziegler-Biersack-Littmark universal potential, per pair of atomic numbers (Z_i, Z_j) at distance r:

    a = 0.4543 * 0.529 / (Z_i^0.3 + Z_j^0.3)                  (screening length, Å)
    phi(x) = 0.1818 e^(-3.2 x) + 0.5099 e^(-0.9423 x) + 0.2802 e^(-0.4028 x) + 0.02817 e^(-0.2016 x)
    V(r) = 14.3996 Z_i Z_j / r * phi(r / a) * f(r / (R_i + R_j))  (eV)

with R the covalent radii and f the polynomial envelope of :class:`~mlpot.nn.radial.PolynomialCutoff`,
so the repulsion acts only at short range (below the sum of covalent radii) and vanishes
smoothly there. Each directed edge gives half of V to its receiver, so an atom's energy holds
half of each of its pairs. These are the constants and the form of mace-torch's ZBLBasis; they
are buffers so that an imported model keeps the exact values it was trained with.
"""

import ase.data
import torch
from torch import nn


class ZBLRepulsion(nn.Module):
    """Edge lengths [E, 1] and the atomic numbers at both ends [E] -> repulsion energy per node [N]."""

    def __init__(self, p: int = 5) -> None:
        super().__init__()
        self.register_buffer("coefficients", torch.tensor([0.1818, 0.5099, 0.2802, 0.02817]))
        self.register_buffer("exponents", torch.tensor([3.2, 0.9423, 0.4028, 0.2016]))
        self.register_buffer("a_exp", torch.tensor(0.300))
        self.register_buffer("a_prefactor", torch.tensor(0.4543))
        self.register_buffer("covalent_radii", torch.tensor(ase.data.covalent_radii, dtype=torch.get_default_dtype()))
        self.p = float(p)

    def forward(
        self, lengths: torch.Tensor, sender_numbers: torch.Tensor, receiver_numbers: torch.Tensor,
        receiver: torch.Tensor, num_nodes: int,
    ) -> torch.Tensor:
        z_sender = sender_numbers.unsqueeze(1).to(lengths.dtype)  # [E, 1]
        z_receiver = receiver_numbers.unsqueeze(1).to(lengths.dtype)
        a = self.a_prefactor * 0.529 / (torch.pow(z_sender, self.a_exp) + torch.pow(z_receiver, self.a_exp))
        r_over_a = lengths / a  # [E, 1]
        phi = (
            self.coefficients[0] * torch.exp(-self.exponents[0] * r_over_a)
            + self.coefficients[1] * torch.exp(-self.exponents[1] * r_over_a)
            + self.coefficients[2] * torch.exp(-self.exponents[2] * r_over_a)
            + self.coefficients[3] * torch.exp(-self.exponents[3] * r_over_a)
        )
        pair = 14.3996 * z_sender * z_receiver / lengths * phi  # [E, 1]
        radii = self.covalent_radii[sender_numbers] + self.covalent_radii[receiver_numbers]  # [E]
        x = lengths / radii.unsqueeze(1)
        p = self.p
        envelope = (
            1.0
            - (p + 1.0) * (p + 2.0) / 2.0 * torch.pow(x, p)
            + p * (p + 2.0) * torch.pow(x, p + 1.0)
            - p * (p + 1.0) / 2.0 * torch.pow(x, p + 2.0)
        ) * (x < 1.0)
        half = (0.5 * pair * envelope).squeeze(1)  # [E]
        return torch.zeros(num_nodes, dtype=lengths.dtype, device=lengths.device).index_add(0, receiver, half)
