"""A toy top-tagging data set: hadronic top jets against QCD-like jets, as constituent four-momenta.

The public top-tagging reference set (Kasieczka et al., the one arXiv 2306.00091 and LorentzNet
report on) cannot be downloaded here, so this module makes a stand-in with the same layout: each
jet is a zero-padded list of massless constituent four-momenta (E, px, py, pz) in GeV, sorted by
transverse momentum, with a mask and a label (1 top, 0 QCD).

Physics, and what is simplified:

- Every jet starts as one massive object moving with pT in ``pt_range`` along a random direction
  (pseudorapidity uniform in [-eta_max, eta_max], azimuth uniform). Signal: a top quark, mass from
  a Breit-Wigner (173 GeV, width 1.4), decaying t -> b W, W -> q q' isotropically in each rest
  frame (no spin correlations, the b quark is treated as light). Background, half each:
  "one-prong" QCD, a single light parton whose virtuality (the jet mass) is drawn from a
  log-normal with a long tail (median 45 GeV), and "two-prong" QCD, a parton that first splits
  hard (energy fraction 0.1-0.5) with a heavier log-normal virtuality (median 80 GeV), so that
  both the W peak and the top peak are populated by background.
- The prongs (b, q, q', QCD partons) shower by a toy of a virtuality-ordered parton shower:
  each object of mass m splits into two with masses a1*m, a2*m (a uniform in [0, 0.6]); the energy
  fraction of the softer daughter is log-uniform in [z_min, 1/2] (the 1/z soft enhancement of
  the splitting functions, no collinear logarithm beyond what the mass ordering gives), set by
  the decay angle in the parent's rest frame relative to its flight direction. Objects lighter
  than ``mass_cutoff`` become massless final-state particles. Four-momentum is conserved
  exactly at every step: the jet's mass before detector effects is the mass it was born with.
- Detector: energies smeared by a calorimeter-like resolution (50 %/sqrt(E) plus 5 %), (eta,
  phi) smeared by 0.01; a few soft "underlying event" particles are added uniformly in the
  cone; constituents with pT < 0.5 GeV or further than R = 0.8 from the jet axis are dropped (a top
  whose b or W falls outside the cone loses mass, as in the real set); the hardest
  ``max_constituents`` are kept. Constituents stay massless.
- No hadronisation, colour connection, b-tagging information, pile-up subtraction or jet
  clustering algorithm; the cone is around the generated direction. Absolute accuracies on
  this set are not comparable with those on the real one.

Everything is numpy, float64, and determined by the seed.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np

TOP_MASS = 173.0
TOP_WIDTH = 1.4
W_MASS = 80.4
W_WIDTH = 2.1


@dataclass
class JetSample:
    """A batch of jets, padded to the same number of constituents."""

    momenta: np.ndarray  # [n_jets, max_constituents, 4] (E, px, py, pz) in GeV, zero where padded
    mask: np.ndarray  # [n_jets, max_constituents] bool, True for a constituent
    label: np.ndarray  # [n_jets] int64, 1 for a top jet, 0 for QCD

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, index: np.ndarray) -> "JetSample":
        return JetSample(self.momenta[index], self.mask[index], self.label[index])

    def transformed(self, matrices: np.ndarray) -> "JetSample":
        """Every constituent multiplied by one Lorentz matrix [4, 4], or by its jet's [n_jets, 4, 4]."""
        matrices = np.broadcast_to(matrices, (len(self), 4, 4))
        momenta = np.einsum("jab,jnb->jna", matrices, self.momenta) * self.mask[..., None]
        return JetSample(momenta, self.mask.copy(), self.label.copy())


def boost_from_rest(momenta_rest: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Four-momenta [n, 4] given in the rest frame of ``parent`` [n, 4] (massive), in the lab."""
    mass = np.sqrt(np.maximum(parent[:, 0] ** 2 - np.sum(parent[:, 1:] ** 2, axis=1), 0.0))  # [n]
    beta = parent[:, 1:] / parent[:, :1]  # [n, 3]
    gamma = parent[:, 0] / mass  # [n]
    beta_dot_p = np.sum(beta * momenta_rest[:, 1:], axis=1)  # [n]
    beta_sq = np.maximum(np.sum(beta**2, axis=1), 1e-300)  # [n]
    energy = gamma * (momenta_rest[:, 0] + beta_dot_p)  # [n]
    factor = (gamma - 1.0) * beta_dot_p / beta_sq + gamma * momenta_rest[:, 0]  # [n]
    return np.concatenate([energy[:, None], momenta_rest[:, 1:] + factor[:, None] * beta], axis=1)


def _orthonormal_frame(axis: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Two unit vectors [n, 3] perpendicular to the unit vectors ``axis`` [n, 3] and each other."""
    helper = np.where(np.abs(axis[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])  # [n, 3]
    first = np.cross(axis, helper)
    first /= np.linalg.norm(first, axis=1, keepdims=True)
    return first, np.cross(axis, first)


def two_body_decay(
    parent: np.ndarray, mass1: np.ndarray, mass2: np.ndarray, cos_theta: np.ndarray, phi: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]:
    """Decay ``parent`` [n, 4] into daughters of masses ``mass1``, ``mass2`` [n]; the first flies at
    polar angle acos(cos_theta) from the parent's flight direction in the parent's rest frame."""
    parent_mass = np.sqrt(parent[:, 0] ** 2 - np.sum(parent[:, 1:] ** 2, axis=1))  # [n]
    lam = (parent_mass**2 - (mass1 + mass2) ** 2) * (parent_mass**2 - (mass1 - mass2) ** 2)
    k = np.sqrt(np.maximum(lam, 0.0)) / (2.0 * parent_mass)  # [n] rest-frame momentum
    axis = parent[:, 1:] / np.linalg.norm(parent[:, 1:], axis=1, keepdims=True)  # [n, 3]
    first, second = _orthonormal_frame(axis)
    sin_theta = np.sqrt(np.maximum(1.0 - cos_theta**2, 0.0))
    direction = (
        cos_theta[:, None] * axis
        + (sin_theta * np.cos(phi))[:, None] * first
        + (sin_theta * np.sin(phi))[:, None] * second
    )  # [n, 3]
    rest1 = np.concatenate([np.sqrt(k**2 + mass1**2)[:, None], k[:, None] * direction], axis=1)
    rest2 = np.concatenate([np.sqrt(k**2 + mass2**2)[:, None], -k[:, None] * direction], axis=1)
    return boost_from_rest(rest1, parent), boost_from_rest(rest2, parent)


def _breit_wigner(rng: np.random.Generator, mass: float, width: float, n: int) -> np.ndarray:
    """Cauchy-distributed masses, cut at +-5 widths."""
    limit = np.arctan(10.0)  # 10 half-widths
    return mass + 0.5 * width * np.tan(rng.uniform(-limit, limit, size=n))


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int, low: float, high: float):
    return np.clip(median * np.exp(sigma * rng.standard_normal(n)), low, high)


def _jet_axes(rng: np.random.Generator, n: int, pt_range: Tuple[float, float], eta_max: float):
    """Transverse momenta, pseudorapidities and azimuths [n] of the jets' directions."""
    return rng.uniform(*pt_range, size=n), rng.uniform(-eta_max, eta_max, size=n), rng.uniform(0, 2 * np.pi, size=n)


def _massive_four_momentum(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: np.ndarray) -> np.ndarray:
    p = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=1)  # [n, 3]
    return np.concatenate([np.sqrt(np.sum(p**2, axis=1) + mass**2)[:, None], p], axis=1)


def _split_masses(rng: np.random.Generator, mass: np.ndarray, cutoff: float) -> Tuple[np.ndarray, np.ndarray]:
    """Daughter masses a1*m, a2*m, a uniform in [0, 0.6]; a daughter below ``cutoff`` is massless."""
    fractions = rng.uniform(0.0, 0.6, size=(2, len(mass)))
    scale = np.minimum(1.0, 0.95 / np.maximum(fractions.sum(axis=0), 1e-12))
    mass1, mass2 = fractions * scale * mass
    return np.where(mass1 < cutoff, 0.0, mass1), np.where(mass2 < cutoff, 0.0, mass2)


def _soft_cos_theta(rng: np.random.Generator, n: int, z_min: float, z_max: float = 0.5) -> np.ndarray:
    """cos(theta*) giving the first daughter an energy fraction z (log-uniform in [z_min, z_max]) or
    1 - z with equal odds, for a fast parent."""
    z = np.exp(rng.uniform(np.log(z_min), np.log(z_max), size=n))
    z = np.where(rng.uniform(size=n) < 0.5, z, 1.0 - z)
    return 2.0 * z - 1.0


def shower(rng: np.random.Generator, objects: np.ndarray, jet: np.ndarray, cutoff: float, z_min: float):
    """Split ``objects`` [n, 4] (of jets ``jet`` [n]) until every piece is massless.

    Returns the final particles [m, 4] and their jet indices [m]."""
    finals, final_jets = [], []
    masses = np.sqrt(np.maximum(objects[:, 0] ** 2 - np.sum(objects[:, 1:] ** 2, axis=1), 0.0))
    massless = masses < cutoff
    finals.append(objects[massless])
    final_jets.append(jet[massless])
    objects, jet, masses = objects[~massless], jet[~massless], masses[~massless]
    while len(objects):
        mass1, mass2 = _split_masses(rng, masses, cutoff)
        cos_theta = _soft_cos_theta(rng, len(objects), z_min)
        phi = rng.uniform(0, 2 * np.pi, size=len(objects))
        first, second = two_body_decay(objects, mass1, mass2, cos_theta, phi)
        objects = np.concatenate([first, second])
        jet = np.concatenate([jet, jet])
        masses = np.concatenate([mass1, mass2])
        done = masses == 0.0
        finals.append(objects[done])
        final_jets.append(jet[done])
        objects, jet, masses = objects[~done], jet[~done], masses[~done]
    return np.concatenate(finals), np.concatenate(final_jets)


def _top_prongs(rng: np.random.Generator, jets: np.ndarray, prong_mass: float):
    """t -> b W, W -> q q': the three prongs [3n, 4] of the top jets ``jets`` [n, 4]."""
    n = len(jets)
    top_mass = np.sqrt(jets[:, 0] ** 2 - np.sum(jets[:, 1:] ** 2, axis=1))
    w_mass = np.minimum(_breit_wigner(rng, W_MASS, W_WIDTH, n), top_mass - 10.0)
    b_mass = _lognormal(rng, prong_mass, 0.6, n, 0.0, 0.9 * (top_mass - w_mass))
    b, w = two_body_decay(jets, b_mass, w_mass, rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n))
    q_mass = _lognormal(rng, prong_mass, 0.6, n, 0.0, 0.45 * w_mass)
    q_bar_mass = _lognormal(rng, prong_mass, 0.6, n, 0.0, 0.45 * w_mass)
    q, q_bar = two_body_decay(w, q_mass, q_bar_mass, rng.uniform(-1, 1, n), rng.uniform(0, 2 * np.pi, n))
    return np.concatenate([b, q, q_bar]), np.tile(np.arange(n), 3)


def _two_prong_qcd(rng: np.random.Generator, jets: np.ndarray, prong_mass: float):
    """A hard first splitting (softer energy fraction 0.1-0.5) of the QCD jets ``jets`` [n, 4]."""
    n = len(jets)
    mass = np.sqrt(jets[:, 0] ** 2 - np.sum(jets[:, 1:] ** 2, axis=1))
    mass1 = _lognormal(rng, prong_mass, 0.6, n, 0.0, 0.45 * mass)
    mass2 = _lognormal(rng, prong_mass, 0.6, n, 0.0, 0.45 * mass)
    z = rng.uniform(0.1, 0.5, n)
    first, second = two_body_decay(jets, mass1, mass2, 2.0 * z - 1.0, rng.uniform(0, 2 * np.pi, n))
    return np.concatenate([first, second]), np.tile(np.arange(n), 2)


def _eta_phi(momenta: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transverse momentum, pseudorapidity and azimuth of ``momenta`` [..., 4]."""
    pt = np.hypot(momenta[..., 1], momenta[..., 2])
    return pt, np.arcsinh(momenta[..., 3] / np.maximum(pt, 1e-12)), np.arctan2(momenta[..., 2], momenta[..., 1])


def _massless(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Massless four-momenta [..., 4] with the given transverse momentum, pseudorapidity, azimuth."""
    return np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)


def make_jets(
    n_jets: int,
    seed: int,
    max_constituents: int = 32,
    pt_range: Tuple[float, float] = (550.0, 650.0),
    eta_max: float = 2.0,
    cone: float = 0.8,
    min_pt: float = 0.5,
    mass_cutoff: float = 0.3,
    underlying_event: float = 4.0,
) -> JetSample:
    """``n_jets`` jets, half top (label 1) and half QCD (label 0, half one-prong, half two-prong),
    in random order, the same for the same arguments."""
    rng = np.random.default_rng(seed)
    n_top = n_jets // 2
    n_one = (n_jets - n_top) // 2
    n_two = n_jets - n_top - n_one
    masses = np.concatenate(
        [
            _breit_wigner(rng, TOP_MASS, TOP_WIDTH, n_top),
            _lognormal(rng, 45.0, 0.55, n_one, 5.0, 400.0),
            _lognormal(rng, 80.0, 0.5, n_two, 10.0, 400.0),
        ]
    )  # [n_jets]
    pt, eta, phi = _jet_axes(rng, n_jets, pt_range, eta_max)
    jets = _massive_four_momentum(pt, eta, phi, masses)  # [n_jets, 4]
    top = np.arange(n_top)
    one = n_top + np.arange(n_one)
    two = n_top + n_one + np.arange(n_two)

    top_prongs, top_jet = _top_prongs(rng, jets[top], prong_mass=8.0)
    qcd_prongs, qcd_jet = _two_prong_qcd(rng, jets[two], prong_mass=8.0)
    objects = np.concatenate([top_prongs, jets[one], qcd_prongs])
    owner = np.concatenate([top[top_jet], one, two[qcd_jet]])
    particles, owner = shower(rng, objects, owner, mass_cutoff, z_min=0.01)  # [m, 4], [m]

    # detector: energy and angle smearing, kept massless
    particle_pt, particle_eta, particle_phi = _eta_phi(particles)
    energy = particles[:, 0]
    resolution = np.sqrt(0.25 / np.maximum(energy, 1e-3) + 0.05**2)
    smear = np.maximum(1.0 + resolution * rng.standard_normal(len(energy)), 0.05)
    particle_eta = particle_eta + 0.01 * rng.standard_normal(len(energy))
    particle_phi = particle_phi + 0.01 * rng.standard_normal(len(energy))
    particle_pt = particle_pt * smear

    # underlying event: a Poisson number of soft particles spread over each jet's cone
    n_soft = rng.poisson(underlying_event, size=n_jets)
    soft_owner = np.repeat(np.arange(n_jets), n_soft)
    radius = cone * np.sqrt(rng.uniform(size=len(soft_owner)))
    angle = rng.uniform(0, 2 * np.pi, size=len(soft_owner))
    soft_pt = 0.5 + rng.exponential(1.5, size=len(soft_owner))
    particle_pt = np.concatenate([particle_pt, soft_pt])
    particle_eta = np.concatenate([particle_eta, eta[soft_owner] + radius * np.cos(angle)])
    particle_phi = np.concatenate([particle_phi, phi[soft_owner] + radius * np.sin(angle)])
    owner = np.concatenate([owner, soft_owner])

    delta_phi = np.angle(np.exp(1j * (particle_phi - phi[owner])))
    inside = (np.hypot(particle_eta - eta[owner], delta_phi) < cone) & (particle_pt > min_pt)
    particles = _massless(particle_pt[inside], particle_eta[inside], particle_phi[inside])
    owner, particle_pt = owner[inside], particle_pt[inside]

    order = np.lexsort((-particle_pt, owner))  # by jet, hardest first
    owner, particles = owner[order], particles[order]
    first_of_jet = np.searchsorted(owner, np.arange(n_jets))
    rank = np.arange(len(owner)) - first_of_jet[owner]
    keep = rank < max_constituents
    momenta = np.zeros((n_jets, max_constituents, 4))
    mask = np.zeros((n_jets, max_constituents), dtype=bool)
    momenta[owner[keep], rank[keep]] = particles[keep]
    mask[owner[keep], rank[keep]] = True

    label = np.concatenate([np.ones(n_top, dtype=np.int64), np.zeros(n_jets - n_top, dtype=np.int64)])
    shuffle = rng.permutation(n_jets)
    return JetSample(momenta[shuffle], mask[shuffle], label[shuffle])


def jet_mass(sample: JetSample) -> np.ndarray:
    """The invariant mass [n_jets] of each jet's kept constituents, in GeV."""
    total = sample.momenta.sum(axis=1)  # [n_jets, 4]
    return np.sqrt(np.maximum(total[:, 0] ** 2 - np.sum(total[:, 1:] ** 2, axis=1), 0.0))
