"""Action-Angle Networks (Daigavane et al., arXiv 2211.15338): learned long-time propagators.

For an integrable Hamiltonian system there are canonical coordinates (actions I, angles theta) in
which the actions are constant and every angle advances linearly, theta(t) = theta(0) + omega(I) t.
The network learns that change of coordinates as a symplectic map from normalised (q, p) to n
latent canonical pairs (u, v), reads each pair as polar coordinates, I = (u^2 + v^2) / 2 and
theta = atan2(-v, u), and predicts any time ahead with one encode, one angle update and one decode:
there is no numerical integration, so the cost of a prediction does not depend on the jump.

The map is one scaling per pair (``PairScaling``, ``CanonicalScaling``) followed by symplectic shear
layers (GSympNet-style, Jin et al. 2020): each shear adds to one half of the state a gradient that
depends only on the other half, so it is undone exactly by subtracting the same term; ``decode``
runs the layers backwards, it is not a second network. Being canonical, the latent pairs of a harmonic system rotate clockwise, which is why the
angle is measured with -v: then the frequencies are positive (a softplus keeps them so).
"""

from typing import Dict, Tuple

import torch
from torch import nn


class StateNormalisation(nn.Module):
    """Per-coordinate shift and scale of states [.., 2n], kept as buffers so they save with a model."""

    def __init__(self, state_dim: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(state_dim, dtype=torch.float64))  # [2n]
        self.register_buffer("scale", torch.ones(state_dim, dtype=torch.float64))  # [2n]

    def set_from(self, states: torch.Tensor) -> None:
        """Mean and standard deviation of training states [T, 2n] (a coordinate that never moves keeps scale 1)."""
        std = states.std(dim=0)
        self.shift.copy_(states.mean(dim=0))
        self.scale.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.scale + self.shift


class LinearShear(nn.Module):
    """One half += other half @ S with S symmetric: a linear symplectic map, exactly invertible."""

    def __init__(self, num_dof: int, update_momenta: bool):
        super().__init__()
        self.update_momenta = update_momenta
        self.weight = nn.Parameter(torch.zeros(num_dof, num_dof, dtype=torch.float64))  # [n, n]

    def _shift(self, source: torch.Tensor) -> torch.Tensor:
        symmetric = self.weight + self.weight.T  # [n, n]
        return source @ symmetric

    def forward(self, u: torch.Tensor, v: torch.Tensor, inverse: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        sign = -1.0 if inverse else 1.0
        if self.update_momenta:
            return u, v + sign * self._shift(u)
        return u + sign * self._shift(v), v


class GradientShear(nn.Module):
    """One half += K^T diag(a) tanh(K other + b): the gradient of a scalar of the other half, so symplectic."""

    def __init__(self, num_dof: int, hidden: int, update_momenta: bool):
        super().__init__()
        self.update_momenta = update_momenta
        self.kernel = nn.Parameter(torch.randn(hidden, num_dof, dtype=torch.float64) / num_dof**0.5)  # [h, n]
        self.bias = nn.Parameter(torch.zeros(hidden, dtype=torch.float64))  # [h]
        # Small output weights: the map starts close to linear and the nonlinearity is learned.
        self.amplitude = nn.Parameter(0.01 * torch.randn(hidden, dtype=torch.float64))  # [h]

    def _shift(self, source: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(source @ self.kernel.T + self.bias)  # [B, h]
        return (hidden * self.amplitude) @ self.kernel  # [B, n]

    def forward(self, u: torch.Tensor, v: torch.Tensor, inverse: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        sign = -1.0 if inverse else 1.0
        if self.update_momenta:
            return u, v + sign * self._shift(u)
        return u + sign * self._shift(v), v


class PairScaling(nn.Module):
    """u *= exp(c), v *= exp(c) per pair: not symplectic, and needed because the normalisation is not either.

    Normalising q_i and p_i by different standard deviations multiplies the area form of pair i by
    1 / (sigma_q_i sigma_p_i), a different factor for every pair; a dynamics that is Hamiltonian in
    (q, p) is then no longer Hamiltonian for the standard form in normalised coordinates, and no
    symplectic map could bring it to uniform rotations. One learned factor per pair restores that.
    """

    def __init__(self, num_dof: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(num_dof, dtype=torch.float64))  # [n]

    def forward(self, u: torch.Tensor, v: torch.Tensor, inverse: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        factor = torch.exp(-self.log_scale if inverse else self.log_scale)  # [n]
        return u * factor, v * factor


class CanonicalScaling(nn.Module):
    """u *= exp(s), v *= exp(-s) per pair: stretches an ellipse into a circle without leaving symplectic maps."""

    def __init__(self, num_dof: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(num_dof, dtype=torch.float64))  # [n]

    def forward(self, u: torch.Tensor, v: torch.Tensor, inverse: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        factor = torch.exp(-self.log_scale if inverse else self.log_scale)  # [n]
        return u * factor, v / factor


class ActionAngleNetwork(nn.Module):
    """Propagator x(t) -> x(t + dt) for states x = (q, p) [B, 2n] through learned action-angle coordinates."""

    def __init__(self, num_dof: int, hidden: int = 64, layers: int = 4, action_weight: float = 1.0):
        super().__init__()
        self.init_args: Dict[str, object] = dict(
            num_dof=num_dof, hidden=hidden, layers=layers, action_weight=action_weight
        )
        self.num_dof = num_dof
        self.action_weight = action_weight
        self.normalisation = StateNormalisation(2 * num_dof)
        blocks = [PairScaling(num_dof), CanonicalScaling(num_dof)]
        for _ in range(layers):
            blocks += [
                LinearShear(num_dof, update_momenta=True),
                LinearShear(num_dof, update_momenta=False),
                GradientShear(num_dof, hidden, update_momenta=True),
                GradientShear(num_dof, hidden, update_momenta=False),
            ]
        self.blocks = nn.ModuleList(blocks)
        self.frequency_net = nn.Sequential(
            nn.Linear(num_dof, hidden, dtype=torch.float64),
            nn.Tanh(),
            nn.Linear(hidden, hidden, dtype=torch.float64),
            nn.Tanh(),
            nn.Linear(hidden, num_dof, dtype=torch.float64),
        )
        with torch.no_grad():  # start at omega = 1 rad per time unit for every pair: softplus(0.5413) = 1
            self.frequency_net[-1].weight.mul_(0.01)
            self.frequency_net[-1].bias.fill_(0.5413)

    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """States [B, 2n] -> (actions [B, n], angles [B, n]) in normalised units, angles in (-pi, pi]."""
        z = self.normalisation.normalise(x)  # [B, 2n]
        u, v = z[:, : self.num_dof], z[:, self.num_dof :]  # [B, n] each
        for block in self.blocks:
            u, v = block(u, v)
        actions = 0.5 * (u**2 + v**2)  # [B, n]
        angles = torch.atan2(-v, u)  # [B, n]
        return actions, angles

    def decode(self, actions: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """The exact inverse of ``encode``: (actions [B, n], angles [B, n]) -> states [B, 2n]."""
        radius = torch.sqrt(2.0 * actions.clamp(min=0.0))  # [B, n]
        u, v = radius * torch.cos(angles), -radius * torch.sin(angles)  # [B, n] each
        for block in reversed(self.blocks):
            u, v = block(u, v, inverse=True)
        return self.normalisation.denormalise(torch.cat([u, v], dim=1))  # [B, 2n]

    def frequencies(self, actions: torch.Tensor) -> torch.Tensor:
        """Angular frequencies omega(I) [B, n] in radians per time unit, positive."""
        return nn.functional.softplus(self.frequency_net(actions))

    def forward(self, x: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """States [B, 2n] and jumps dt [B] (time units) -> predicted states [B, 2n]."""
        actions, angles = self.encode(x)
        angles = angles + self.frequencies(actions) * dt[:, None]  # [B, n]
        return self.decode(actions, angles)

    def loss(self, x0: torch.Tensor, x1: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """Mean squared state error (normalised units) plus action_weight * mean squared action change."""
        actions0, angles0 = self.encode(x0)
        actions1, _ = self.encode(x1)
        angles = angles0 + self.frequencies(actions0) * dt[:, None]
        predicted = self.normalisation.normalise(self.decode(actions0, angles))  # [B, 2n]
        state_error = ((predicted - self.normalisation.normalise(x1)) ** 2).sum(dim=1).mean()
        action_change = ((actions1 - actions0) ** 2).sum(dim=1).mean()
        return state_error + self.action_weight * action_change
