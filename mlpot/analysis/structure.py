"""Static structure: pair distribution functions, coordination numbers and structure factors.

Conventions (Faber-Ziman; Keen, J. Appl. Cryst. 34, 172 (2001)), for elements a, b with
concentrations c_a and total number density rho0:

- g_ab(r): the density of b atoms at distance r from an a atom divided by its mean,
  (N_b - delta_ab) / V, so that an ideal gas gives exactly 1 in a finite box. Counted per frame
  with matscipy's neighbour list (all periodic images, so r may exceed half the box).
- n_ab(r): mean number of b neighbours of an a atom within r (the running coordination number).
- Weighted totals with weights w (neutrons: b_coh; X-rays: f0(Q), at Q = 0 in real space):
  g_w(r) = sum_ab c_a c_b w_a w_b g_ab(r) / <w>^2, and the reduced PDF that diffraction
  analyses report, G(r) = 4 pi rho0 r (g_w(r) - 1) (1/Å^2).
- S_ab(Q) = 1 + 4 pi rho0 int r^2 (g_ab(r) - 1) sin(Qr)/(Qr) dr (Faber-Ziman partials), total
  S_w(Q) = 1 + sum_ab c_a c_b w_a w_b (S_ab(Q) - 1) / <w>^2, which tends to 1 at large Q.
- The direct sum (dynasor) gives S'_ab(q) = <rho_a(q) rho_b(-q)> / N (both orders summed for
  a != b) on the reciprocal lattice of the box, averaged in |q| shells; for q != 0
  S'_ab = (2 - delta_ab) c_a c_b (S_ab - 1) + delta_ab c_a, from which the Faber-Ziman partials
  follow. Their sum S'(Q) = sum_ab S'_ab is the number-number S(Q) (1 for an ideal gas).

The direct sum is exact for the box but only samples Q on its reciprocal lattice (no Q below
the shortest reciprocal vector, spacing ~2 pi / L). The transform of g(r) is cut at r_max, so it
is reliable above Q ~ 2 pi / r_max and only where g(r) has decayed to 1 by r_max (liquids,
glasses; not crystals). Both ranges are reported.
"""

import logging
from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from matscipy.neighbours import neighbour_list

from mlpot.analysis.trajectory import Frame

Pair = Tuple[str, str]


def element_pairs(symbols: List[str]) -> List[Pair]:
    return list(combinations_with_replacement(symbols, 2))


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """[3] distances between opposite faces of the cell (Å)."""
    volume = abs(np.linalg.det(cell))
    return volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)


def shortest_reciprocal_vector(cell: np.ndarray) -> float:
    """|G| of the shortest non-zero reciprocal lattice vector of the box (1/Å)."""
    reciprocal = 2.0 * np.pi * np.linalg.inv(cell).T  # [3, 3] rows b_i
    steps = np.array([(h, k, l) for h in (-1, 0, 1) for k in (-1, 0, 1) for l in (-1, 0, 1) if (h, k, l) != (0, 0, 0)])
    return float(np.linalg.norm(steps @ reciprocal, axis=1).min())


@dataclass
class PairDistribution:
    r: np.ndarray  # [n_bins] bin centres, Å
    g: Dict[Pair, np.ndarray]  # [n_bins] per element pair (a <= b in atomic-number order)
    coordination: Dict[Pair, np.ndarray]  # [n_bins] b neighbours of an a atom within the bin's upper edge
    concentrations: Dict[str, float]
    density: float  # mean number density, 1/Å^3
    frames: int

    def total(self, weights: Dict[str, float]) -> np.ndarray:
        """g_w(r) [n_bins] with real-space weights w_a (weights 1: the number-number g(r))."""
        mean = sum(self.concentrations[a] * weights[a] for a in weights)
        total = np.zeros_like(self.r)
        for (a, b), g in self.g.items():
            factor = (1 if a == b else 2) * self.concentrations[a] * self.concentrations[b] * weights[a] * weights[b]
            total += factor * g
        return total / mean**2

    def reduced(self, weights: Dict[str, float]) -> np.ndarray:
        """G(r) = 4 pi rho0 r (g_w(r) - 1), 1/Å^2."""
        return 4.0 * np.pi * self.density * self.r * (self.total(weights) - 1.0)


class PairDistributionAccumulator:
    """Histograms pair distances frame by frame; memory does not grow with the trajectory."""

    def __init__(self, numbers: np.ndarray, symbols: List[str], r_max: float, dr: float):
        self.numbers = numbers  # [N]
        self.symbols = symbols
        self.pairs = element_pairs(symbols)
        self.edges = np.arange(0.0, r_max + 0.5 * dr, dr)  # [n_bins + 1]
        self.r_max = float(self.edges[-1])
        index = {symbol: k for k, symbol in enumerate(symbols)}
        self.kind = np.array([index[s] for s in _symbols(numbers)])  # [N] element index of each atom
        self.counts = {symbol: int(np.sum(self.kind == k)) for symbol, k in index.items()}
        n = len(symbols)
        self.pair_index = np.full((n, n), -1)  # ordered (kind_i, kind_j) -> unordered pair
        for p, (a, b) in enumerate(self.pairs):
            self.pair_index[index[a], index[b]] = self.pair_index[index[b], index[a]] = p
        n_bins = len(self.edges) - 1
        self.histogram = np.zeros((len(self.pairs), n_bins))  # [n_pairs, n_bins] pairs per frame, / (N_a N_b / V)
        self.neighbours = np.zeros((len(self.pairs), n_bins))  # [n_pairs, n_bins] raw pair counts, summed over frames
        self.volume_sum = 0.0
        self.frames = 0

    def add(self, frame: Frame) -> None:
        atoms = Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=frame.pbc)
        i, j, d = neighbour_list("ijd", atoms, self.r_max)
        n_bins = len(self.edges) - 1
        bins = np.minimum((d / (self.edges[1] - self.edges[0])).astype(np.int64), n_bins - 1)
        pair = self.pair_index[self.kind[i], self.kind[j]]  # [n_pairs_found]
        counts = np.bincount(pair * n_bins + bins, minlength=len(self.pairs) * n_bins).reshape(len(self.pairs), n_bins)
        volume = frame.volume
        for p, (a, b) in enumerate(self.pairs):
            pairs_in_box = self.counts[a] * (self.counts[b] - (1 if a == b else 0))
            both_orders = 1 if a == b else 2  # the list holds i->j and j->i; for a != b both land in p
            self.histogram[p] += counts[p] * volume / (both_orders * pairs_in_box)
            self.neighbours[p] += counts[p]
        self.volume_sum += volume
        self.frames += 1

    def result(self) -> PairDistribution:
        shells = 4.0 / 3.0 * np.pi * (self.edges[1:] ** 3 - self.edges[:-1] ** 3)  # [n_bins] Å^3
        total = sum(self.counts.values())
        g, coordination = {}, {}
        for p, (a, b) in enumerate(self.pairs):
            g[(a, b)] = self.histogram[p] / (shells * self.frames)
            # for a != b the bincount holds a->b and b->a pairs: N_a n_ab = N_b n_ba = half of it
            half = 1 if a == b else 2
            coordination[(a, b)] = np.cumsum(self.neighbours[p]) / (half * self.counts[a] * self.frames)
            if a != b:
                coordination[(b, a)] = np.cumsum(self.neighbours[p]) / (half * self.counts[b] * self.frames)
        return PairDistribution(
            r=0.5 * (self.edges[1:] + self.edges[:-1]),
            g=g,
            coordination=coordination,
            concentrations={s: n / total for s, n in self.counts.items()},
            density=total * self.frames / self.volume_sum,
            frames=self.frames,
        )


def first_shell_coordination(rdf: PairDistribution) -> Dict[str, Dict[str, float]]:
    """n_ab at the first minimum of g_ab (r_min), per ordered pair: the lowest g between the first
    peak r1 (first local maximum above half the highest) and 1.6 r1, which holds the first
    minimum of liquids (~1.4 r1) and the gap before fcc's second shell (1.41 r1)."""
    table: Dict[str, Dict[str, float]] = {}
    for (a, b), g in rdf.g.items():
        peak = int(np.argmax(g >= 0.5 * g.max()))
        while peak + 1 < len(g) and g[peak + 1] >= g[peak]:
            peak += 1
        end = int(np.searchsorted(rdf.r, 1.6 * rdf.r[peak]))
        if end >= len(g) or end <= peak + 1:
            continue  # r_max too short to see the first minimum
        minimum = peak + int(np.argmin(g[peak:end]))
        for first, second in {(a, b), (b, a)}:
            table[f"{first}-{second}"] = {"r_min_A": float(rdf.r[minimum]), "n": float(rdf.coordination[(first, second)][minimum])}
    return table


@dataclass
class StructureFactor:
    q: np.ndarray  # [n_q] 1/Å
    partials: Dict[Pair, np.ndarray]  # [n_q] Faber-Ziman S_ab(Q)
    concentrations: Dict[str, float]
    number_number: Optional[np.ndarray] = None  # [n_q] sum of dynasor's partials (direct sum only)

    def total(self, weights: Dict[str, np.ndarray]) -> np.ndarray:
        """S_w(Q) [n_q] with weights w_a(Q) ([n_q] arrays or numbers)."""
        mean = sum(self.concentrations[a] * np.asarray(weights[a]) for a in weights)
        total = np.zeros_like(self.q)
        for (a, b), s in self.partials.items():
            factor = (1 if a == b else 2) * self.concentrations[a] * self.concentrations[b]
            total = total + factor * np.asarray(weights[a]) * np.asarray(weights[b]) * (s - 1.0)
        return 1.0 + total / mean**2


def structure_factor_from_rdf(rdf: PairDistribution, q: np.ndarray) -> StructureFactor:
    """Faber-Ziman S_ab(Q) [n_q] by the sine transform of g_ab(r) - 1 up to r_max (midpoint rule)."""
    dr = rdf.r[1] - rdf.r[0]
    kernel = np.sinc(np.outer(q, rdf.r) / np.pi)  # [n_q, n_bins] sin(Qr)/(Qr)
    partials = {pair: 1.0 + 4.0 * np.pi * rdf.density * dr * kernel @ (rdf.r**2 * (g - 1.0)) for pair, g in rdf.g.items()}
    return StructureFactor(q=q, partials=partials, concentrations=rdf.concentrations)


def direct_structure_factor(stream: Iterable, cell: np.ndarray, symbols: List[str], concentrations: Dict[str, float],
                            q_max: float, dq: float, max_points: int, seed: int = 0) -> StructureFactor:
    """S(Q) from dynasor's direct sums over the reciprocal lattice of the box, averaged in |Q| bins.

    ``stream`` is a :class:`~mlpot.analysis.dynasor_bridge.FrameStream`. At most ``max_points``
    q-points are used (dynasor prunes them evenly in |q| above the radius where the lattice
    holds more); bins of width ~``dq`` that hold no q-point are left out.
    """
    from dynasor import compute_static_structure_factors, get_spherical_qpoints
    from dynasor.post_processing import get_spherically_averaged_sample_binned

    logging.getLogger("dynasor").setLevel(logging.WARNING)
    q_min = shortest_reciprocal_vector(cell)
    q_points = get_spherical_qpoints(cell, q_max=q_max, q_min=0.5 * q_min, max_points=max_points, seed=seed)  # [n_points, 3]
    sample = compute_static_structure_factors(stream, q_points, logging_interval=0)
    norms = np.linalg.norm(q_points, axis=1)
    bins = max(2, int(round((norms.max() - norms.min()) / dq)) + 1)
    logging.getLogger("dynasor").setLevel(logging.ERROR)  # it warns for every empty bin, which are left out below
    binned = get_spherically_averaged_sample_binned(sample, num_q_bins=bins)
    q = np.asarray(binned.q_norms)
    keep = np.isfinite(np.asarray(binned.Sq).reshape(-1))
    partials = {}
    for a, b in element_pairs(symbols):
        key = f"Sq_{a}_{b}" if a <= b else f"Sq_{b}_{a}"  # dynasor orders pairs alphabetically
        raw = np.asarray(binned[key]).reshape(-1)[keep]  # [n_q] dynasor's S'_ab
        ca, cb = concentrations[a], concentrations[b]
        partials[(a, b)] = 1.0 + (raw / (1 if a == b else 2) - (ca if a == b else 0.0)) / (ca * cb)
    return StructureFactor(q=q[keep], partials=partials, concentrations=concentrations,
                           number_number=np.asarray(binned.Sq).reshape(-1)[keep])


def _symbols(numbers: np.ndarray) -> List[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[z] for z in numbers]


def symbols_of(numbers: np.ndarray) -> List[str]:
    """Distinct element symbols, in order of atomic number."""
    return [s for s in sorted(set(_symbols(numbers)), key=lambda s: atomic_numbers[s])]
