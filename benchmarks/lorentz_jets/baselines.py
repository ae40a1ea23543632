"""Non-equivariant baselines for the toy top-tagging benchmark, on the same inputs as LorentzMACE:
constituent four-momenta [B, N, 4] (GeV) and a mask [B, N]; each returns logits [B].

Per constituent they see either the four-momentum itself ("four_momenta") or the usual
jet-physics preprocessing ("jet_frame": eta and phi relative to the jet axis, log pT and log E
as fractions of the jet's), which is invariant under boosts along the beam and rotations about
it, though not under general Lorentz transformations. Either is standardised with the training
set's mean and standard deviation per feature."""

import torch
from torch import nn

FEATURES = ("four_momenta", "jet_frame")


def jet_frame(momenta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(delta eta, delta phi, log pT/pT_jet, log E/E_jet) [B, N, 4] of constituents [B, N, 4]."""
    momenta = momenta * mask.unsqueeze(-1)
    jet = momenta.sum(dim=1, keepdim=True)  # [B, 1, 4]

    def pt_eta_phi(p: torch.Tensor):
        pt = torch.hypot(p[..., 1], p[..., 2]).clamp_min(1e-9)
        return pt, torch.asinh(p[..., 3] / pt), torch.atan2(p[..., 2], p[..., 1])

    pt, eta, phi = pt_eta_phi(momenta)
    jet_pt, jet_eta, jet_phi = pt_eta_phi(jet)
    delta_phi = torch.remainder(phi - jet_phi + torch.pi, 2 * torch.pi) - torch.pi
    features = torch.stack(
        [eta - jet_eta, delta_phi, torch.log(pt / jet_pt), torch.log(momenta[..., 0].clamp_min(1e-9) / jet[..., 0])], dim=-1
    )
    return features * mask.unsqueeze(-1)


class _Standardised(nn.Module):
    def __init__(self, features: str, shift: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.features = features
        self.register_buffer("shift", shift)  # [4]
        self.register_buffer("scale", scale)  # [4]

    def inputs(self, momenta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raw = jet_frame(momenta, mask) if self.features == "jet_frame" else momenta
        return (raw - self.shift) / self.scale * mask.unsqueeze(-1)  # [B, N, 4]


class FlatMLP(_Standardised):
    """An MLP on the flattened, zero-padded constituent list (sorted by pT, as the data come)."""

    def __init__(self, constituents: int, hidden: int, features: str, shift: torch.Tensor, scale: torch.Tensor):
        super().__init__(features, shift, scale)
        self.net = nn.Sequential(
            nn.Linear(4 * constituents, hidden), nn.SiLU(), nn.Linear(hidden, hidden // 2), nn.SiLU(), nn.Linear(hidden // 2, 1)
        )

    def forward(self, momenta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(self.inputs(momenta, mask).flatten(1)).squeeze(-1)


class DeepSets(_Standardised):
    """phi per constituent, masked sum over the jet, rho on the sum (Zaheer et al.; the Particle
    Flow Network of Komiske et al.)."""

    def __init__(self, hidden: int, features: str, shift: torch.Tensor, scale: torch.Tensor, neighbours: float = 20.0):
        super().__init__(features, shift, scale)
        self.neighbours = neighbours
        self.phi = nn.Sequential(nn.Linear(4, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.rho = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, momenta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        per_particle = self.phi(self.inputs(momenta, mask)) * mask.unsqueeze(-1)  # [B, N, H]
        return self.rho(per_particle.sum(dim=1) / self.neighbours).squeeze(-1)
