"""Toy integrable systems with exact solutions, for training and testing learned propagators.

States are x = (q, p) [T, 2n], positions first, momenta second, in the systems' own units.

* ``CoupledOscillators``: masses on a line joined by springs, the outer two also to fixed walls;
  solved exactly by its normal modes, whose frequencies are the reference for the learned ones.
* ``KeplerOrbit``: a bound orbit of unit mass about a fixed centre, potential -mu / r, in the plane;
  solved exactly through Kepler's equation M = E - e sin(E) (Newton to machine precision). Its one
  frequency is the mean motion sqrt(mu / a^3); as the eccentricity approaches 1 (near-parabolic)
  the motion spends almost all its time far out and passes the centre in a flash.
* ``HenonHeiles``: two oscillators coupled by a cubic term, integrable only approximately: at
  energy 1/12 most orbits lie on tori, at 1/6 most are chaotic. Integrated with scipy's DOP853 at
  rtol = atol = 1e-12 (scipy comes with ase). A chaotic orbit cannot be converged over hundreds of
  time units, but each pair (x(t), x(t + dt)) is a true pair to about 1e-12 exp(lambda dt), which
  is what training and testing on jumps use.
"""

import math
from typing import Sequence, Tuple

import torch


def uniform_times(duration: float, step: float) -> torch.Tensor:
    """0, step, 2 step, ... up to ``duration`` [T]."""
    return torch.arange(round(duration / step) + 1, dtype=torch.float64) * step


class CoupledOscillators:
    """wall -k0- m0 -k1- m1 - ... - m(n-1) -kn- wall; ``springs`` has one more entry than ``masses``."""

    def __init__(self, masses: Sequence[float] = (1.0, 2.0), springs: Sequence[float] = (1.0, 0.5, 1.5)):
        if len(springs) != len(masses) + 1:
            raise ValueError("a chain of n masses between two walls has n + 1 springs")
        self.masses = torch.tensor(masses, dtype=torch.float64)  # [n]
        springs_t = torch.tensor(springs, dtype=torch.float64)  # [n + 1]
        n = len(masses)
        stiffness = torch.diag(springs_t[:-1] + springs_t[1:])  # [n, n]
        off_diagonal = -springs_t[1:-1]  # [n - 1]
        self.stiffness = stiffness + torch.diag(off_diagonal, 1) + torch.diag(off_diagonal, -1)
        inverse_root_mass = self.masses.rsqrt()  # [n]
        dynamical = inverse_root_mass[:, None] * self.stiffness * inverse_root_mass[None, :]  # [n, n]
        eigenvalues, self.modes = torch.linalg.eigh(dynamical)  # [n], [n, n] columns = mass-weighted modes
        self.omega = eigenvalues.sqrt()  # [n], ascending
        self.num_dof = n

    def normal_mode_frequencies(self) -> torch.Tensor:
        """Angular frequencies [n] of the normal modes, ascending."""
        return self.omega.clone()

    def trajectory(self, times: torch.Tensor, q0: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
        """Exact states [T, 2n] at ``times`` [T] from displacements q0 [n] and momenta p0 [n]."""
        root_mass = self.masses.sqrt()  # [n]
        amplitude = self.modes.T @ (root_mass * q0)  # [n] mode coordinates at t = 0
        rate = self.modes.T @ (p0 / root_mass)  # [n] their time derivatives
        phase = times[:, None] * self.omega[None, :]  # [T, n]
        modes_t = amplitude * torch.cos(phase) + rate / self.omega * torch.sin(phase)  # [T, n]
        modes_rate = -amplitude * self.omega * torch.sin(phase) + rate * torch.cos(phase)  # [T, n]
        q = (modes_t @ self.modes.T) / root_mass  # [T, n]
        p = (modes_rate @ self.modes.T) * root_mass  # [T, n]
        return torch.cat([q, p], dim=1)

    def energy(self, states: torch.Tensor) -> torch.Tensor:
        """Total energy [T] of states [T, 2n]."""
        q, p = states[:, : self.num_dof], states[:, self.num_dof :]
        return 0.5 * (p**2 / self.masses).sum(dim=1) + 0.5 * ((q @ self.stiffness) * q).sum(dim=1)

    def random_trajectory(self, duration: float, step: float, seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """(times [T], states [T, 2n]) from displacements and momenta drawn uniformly in [-1, 1] by ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        q0, p0 = (2.0 * torch.rand(2, self.num_dof, generator=generator, dtype=torch.float64) - 1.0).unbind(0)
        times = uniform_times(duration, step)
        return times, self.trajectory(times, q0, p0)


class KeplerOrbit:
    """A bound Kepler orbit (unit mass, potential -mu / r) with its pericentre on the +x axis."""

    def __init__(self, eccentricity: float = 0.5, semi_major_axis: float = 1.0, mu: float = 1.0):
        if not 0.0 <= eccentricity < 1.0:
            raise ValueError("a bound orbit has eccentricity in [0, 1)")
        self.eccentricity = eccentricity
        self.semi_major_axis = semi_major_axis
        self.mu = mu
        self.num_dof = 2

    def mean_motion(self) -> float:
        """The orbit's angular frequency 2 pi / period = sqrt(mu / a^3)."""
        return math.sqrt(self.mu / self.semi_major_axis**3)

    def eccentric_anomaly(self, mean_anomaly: torch.Tensor) -> torch.Tensor:
        """Solves E - e sin(E) = M [T] by Newton's method to machine precision."""
        e = self.eccentricity
        wrapped = torch.remainder(mean_anomaly, 2.0 * math.pi)  # [T]
        anomaly = wrapped + e * torch.sin(wrapped) if e < 0.8 else torch.full_like(wrapped, math.pi)
        for _ in range(100):
            correction = (anomaly - e * torch.sin(anomaly) - wrapped) / (1.0 - e * torch.cos(anomaly))
            anomaly = anomaly - correction
            if float(correction.abs().max()) < 1e-15:
                break
        return anomaly

    def trajectory(self, times: torch.Tensor, mean_anomaly0: float = 0.0) -> torch.Tensor:
        """Exact states (x, y, px, py) [T, 4] at ``times`` [T], starting at mean anomaly ``mean_anomaly0``."""
        a, e, n = self.semi_major_axis, self.eccentricity, self.mean_motion()
        anomaly = self.eccentric_anomaly(mean_anomaly0 + n * times.to(torch.float64))  # [T]
        minor = math.sqrt(1.0 - e * e)
        anomaly_rate = n / (1.0 - e * torch.cos(anomaly))  # [T]
        x = a * (torch.cos(anomaly) - e)
        y = a * minor * torch.sin(anomaly)
        px = -a * torch.sin(anomaly) * anomaly_rate
        py = a * minor * torch.cos(anomaly) * anomaly_rate
        return torch.stack([x, y, px, py], dim=1)

    def energy(self, states: torch.Tensor) -> torch.Tensor:
        """Total energy [T] of states [T, 4]; -mu / (2a) on the orbit."""
        radius = states[:, :2].norm(dim=1)
        return 0.5 * (states[:, 2:] ** 2).sum(dim=1) - self.mu / radius


class HenonHeiles:
    """H = (px^2 + py^2) / 2 + (x^2 + y^2) / 2 + x^2 y - y^3 / 3; states (x, y, px, py)."""

    num_dof = 2

    @staticmethod
    def potential(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2 + y**2) + x**2 * y - y**3 / 3.0

    def energy(self, states: torch.Tensor) -> torch.Tensor:
        """Total energy [T] of states [T, 4]."""
        return 0.5 * (states[:, 2:] ** 2).sum(dim=1) + self.potential(states[:, 0], states[:, 1])

    def initial_state(self, energy: float, y: float) -> torch.Tensor:
        """The state [4] at x = 0, py = 0 and the given y, with px > 0 fixed by ``energy``."""
        kinetic = energy - float(self.potential(torch.tensor(0.0, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)))
        if kinetic < 0:
            raise ValueError(f"y = {y} lies outside the energy surface {energy}")
        return torch.tensor([0.0, y, math.sqrt(2.0 * kinetic), 0.0], dtype=torch.float64)

    @staticmethod
    def _rate(_, state):
        x, y, px, py = state
        return [px, py, -x - 2.0 * x * y, -y - x * x + y * y]

    def trajectory(self, times: torch.Tensor, state0: torch.Tensor) -> torch.Tensor:
        """States [T, 4] at ``times`` [T] (starting at times[0]) from ``state0`` [4]."""
        from scipy.integrate import solve_ivp

        t = times.tolist()
        solution = solve_ivp(
            self._rate, (t[0], t[-1]), state0.tolist(), method="DOP853", t_eval=t, rtol=1e-12, atol=1e-12
        )
        return torch.tensor(solution.y.T, dtype=torch.float64)

    def lyapunov_exponent(self, state0: torch.Tensor, duration: float = 300.0, interval: float = 10.0) -> float:
        """Largest Lyapunov exponent (per time unit) by renormalising a 1e-8 offset every ``interval``."""
        offset = 1e-8
        state = state0.clone()
        neighbour = state + torch.tensor([offset, 0.0, 0.0, 0.0], dtype=torch.float64)
        window = torch.tensor([0.0, interval], dtype=torch.float64)
        growth = 0.0
        for _ in range(round(duration / interval)):
            state = self.trajectory(window, state)[-1]
            neighbour = self.trajectory(window, neighbour)[-1]
            distance = float((neighbour - state).norm())
            growth += math.log(distance / offset)
            neighbour = state + (neighbour - state) * (offset / distance)
        return growth / duration
