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
the shortest reciprocal vector, spacing ~2 pi / L); it keeps every |q| shell up to q_max
(:func:`reciprocal_sample`). The transform of g(r) is cut at r_max = R with a Lorch window: it
is S(Q) smoothed over Q +- pi / R, reliable above Q = 2 pi / R and only where g(r) has decayed
to 1 by R (liquids, glasses; not crystals) (:func:`structure_factor_from_rdf`). Both ranges
are reported.
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
from mlpot.errors import MLPotError

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


def structure_factor_from_rdf(rdf: PairDistribution, q: np.ndarray, r_max: float) -> StructureFactor:
    """Faber-Ziman S_ab(Q) [n_q] by the sine transform of g_ab(r) - 1 up to R = ``r_max`` (the
    histogram's end), with the Lorch window W(r) = sin(pi r / R) / (pi r / R) (midpoint rule).

    Cutting g(r) at R unwindowed convolves Q (S(Q) - 1) with sin(R Q) / (pi Q), whose slowly
    decaying side lobes ring with period 2 pi / R. With the window, since
    sin(Qr) W(r) = (R / 2 pi) int_{Q - pi/R}^{Q + pi/R} sin(Q'r) dQ', the result is
    Q (S(Q) - 1) averaged over Q' in [Q - pi/R, Q + pi/R], exactly so where g(r) = 1 beyond R;
    where it is not (crystals), W(R) = 0 still removes the step at R that makes the unwindowed
    cut ring. The price is resolution: features narrower than 2 pi / R (Bragg peaks) come out
    that wide. The average stays on Q' > 0, within [Q/2, 3Q/2], for
    Q >= :func:`transform_reliable_above` = 2 pi / R; below that it mixes in the mirror image
    Q' < 0 (Q (S - 1) is odd in Q) and is not S at Q.
    """
    dr = rdf.r[1] - rdf.r[0]
    window = np.sinc(rdf.r / r_max)  # [n_bins] sin(pi r/R)/(pi r/R)
    kernel = np.sinc(np.outer(q, rdf.r) / np.pi)  # [n_q, n_bins] sin(Qr)/(Qr)
    partials = {pair: 1.0 + 4.0 * np.pi * rdf.density * dr * kernel @ (rdf.r**2 * (g - 1.0) * window) for pair, g in rdf.g.items()}
    return StructureFactor(q=q, partials=partials, concentrations=rdf.concentrations)


def transform_reliable_above(r_max: float) -> float:
    """2 pi / R: the lowest Q where the windowed transform of g(r) up to R is a local average of S (1/Å)."""
    return 2.0 * np.pi / r_max


SHELL_TOLERANCE = 1e-9  # 1/Å: reciprocal-lattice vectors whose |q| agree to this are one shell


@dataclass
class ReciprocalSample:
    """The reciprocal-lattice vectors of the box that the direct sum uses, and what each stands for."""

    q_points: np.ndarray  # [n_points, 3] Cartesian, 1/Å; one of each pair +q, -q
    weight: np.ndarray  # [n_points] vectors of its stratum per vector kept (1 where all are kept)
    bin: np.ndarray  # [n_points] its |Q| bin, floor(|q| / dq)
    bin_q: np.ndarray  # [n_bins] mean |q| of all lattice vectors in each bin (nan where none), 1/Å
    lattice_vectors: int  # vectors with 0 < |q| <= q_max, one of each +q, -q
    every_shell_kept: bool  # every |q| shell of the box has vectors in the sum
    stratum_width: float  # 1/Å: 0 where strata are exact |q| shells, else the width of the |q| slices


def reciprocal_sample(cell: np.ndarray, q_max: float, dq: float, max_points: int) -> ReciprocalSample:
    """At most ``max_points`` reciprocal-lattice vectors of the box up to ``q_max``, stratified by |q|.

    Every vector q with 0 < |q| <= q_max is enumerated, one of each pair +q, -q (S(q) = S(-q)
    exactly in every frame). The vectors fall into strata, the exact |q| shells (all vectors of
    one length, e.g. the 12 (220) vectors of an fcc crystal), each inside one |Q| bin of width
    ``dq``. Each stratum keeps k = round(c n) of its n vectors, at least one, with one fraction c
    for all, the largest that fits ``max_points``; the kept vectors are spread evenly over the
    stratum's directions (sorted by cos(theta), then phi; no random numbers) and each stands for
    n / k vectors in its bin's average. So no shell, and so no Bragg reflection, is left out; a
    bin's average weighs each shell by its full multiplicity, as the average over every vector
    does, and equals that average exactly where the vectors of a shell are equivalent (by the
    crystal's symmetry; for a liquid, on average). Where the box has more shells than
    ``max_points`` (large or low-symmetry boxes; a cubic box of side L has ~0.8 (q_max L / 2 pi)^2
    shells), neighbouring shells merge into |q| slices of width dq / 2^m, the finest that fits,
    and ``every_shell_kept`` is False.

    Cost: the direct sum runs over at most ``max_points`` vectors (its cost is atoms x vectors
    per frame), whatever the box. Enumerating the lattice, once, is numpy work over
    V q_max^3 / (12 pi^2) vectors for a box of volume V, ~150 bytes each while it runs (a 60 Å
    cube at q_max = 10 1/Å: 1.8 million vectors, ~270 MB).
    """
    reciprocal = 2.0 * np.pi * np.linalg.inv(cell).T  # [3, 3] rows b_i
    spacing = 2.0 * np.pi / np.linalg.norm(cell, axis=1)  # [3] distance between planes of constant index i
    limits = np.ceil(q_max / spacing).astype(int)  # [3] no vector within q_max has a larger index
    grid = np.stack(np.meshgrid(np.arange(-limits[1], limits[1] + 1), np.arange(-limits[2], limits[2] + 1), indexing="ij"), axis=-1).reshape(-1, 2)
    slabs = []
    for h in range(limits[0] + 1):  # h > 0, or h = 0 and (k, l) > 0: one of each +q, -q
        indices = np.concatenate([np.full((len(grid), 1), h), grid], axis=1)  # [n, 3]
        if h == 0:
            indices = indices[(indices[:, 1] > 0) | ((indices[:, 1] == 0) & (indices[:, 2] > 0))]
        slabs.append(indices[np.linalg.norm(indices @ reciprocal, axis=1) <= q_max].astype(np.int32))
    indices = np.concatenate(slabs)  # [n_vectors, 3]
    if len(indices) == 0:
        raise MLPotError(f"--q-max {q_max:g} 1/Å is below the shortest reciprocal-lattice vector of the box "
                         f"({shortest_reciprocal_vector(cell):.3f} 1/Å)")
    vectors = indices @ reciprocal  # [n_vectors, 3]
    norms = np.linalg.norm(vectors, axis=1)  # [n_vectors]
    shells = np.round(norms / SHELL_TOLERANCE).astype(np.int64)  # [n_vectors] exact |q| shell
    bins = np.floor(shells * SHELL_TOLERANCE / dq).astype(np.int64)  # [n_vectors] one bin per shell
    occupied = len(np.unique(bins))
    if occupied > max_points:
        raise MLPotError(f"--q-points {max_points} is fewer than the {occupied} |Q| bins of width --dq {dq:g}; raise --q-points or --dq")
    strata, width = shells, 0.0
    if len(np.unique(shells)) > max_points:
        m = _finest_slicing(norms, bins, dq, max_points)
        strata, width = _slices(norms, bins, dq, m), dq / 2**m
    _, stratum, size = np.unique(strata, return_inverse=True, return_counts=True)  # [n_vectors], [n_strata]
    direction = vectors / norms[:, None]  # [n_vectors, 3]
    order = np.lexsort((np.arctan2(direction[:, 1], direction[:, 0]), direction[:, 2], shells, stratum))  # strata in turn
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])  # [n_strata] where each stratum begins in ``order``
    kept = _proportional_share(size, max_points)  # [n_strata]
    owner = np.repeat(np.arange(len(size)), kept)  # [n_points] stratum of each kept vector
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(kept) - kept, kept)  # [n_points] 0..kept-1 within the stratum
    chosen = order[starts[owner] + ((rank + 0.5) * size[owner] / kept[owner]).astype(np.int64)]  # evenly through the stratum
    counts = np.bincount(bins)  # [n_bins]
    bin_q = np.bincount(bins, weights=norms) / np.maximum(counts, 1)
    bin_q[counts == 0] = np.nan
    return ReciprocalSample(q_points=vectors[chosen], weight=(size / kept)[owner], bin=bins[chosen], bin_q=bin_q,
                            lattice_vectors=len(indices), every_shell_kept=width == 0.0, stratum_width=width)


def _slices(norms: np.ndarray, bins: np.ndarray, dq: float, m: int) -> np.ndarray:
    """[n_vectors] index of the |q| slice of width dq / 2^m, numbered within each bin (slices never straddle bins)."""
    within = np.clip(np.floor((norms - bins * dq) / dq * 2**m).astype(np.int64), 0, 2**m - 1)
    return bins * 2**m + within


def _finest_slicing(norms: np.ndarray, bins: np.ndarray, dq: float, max_points: int) -> int:
    """The largest m <= 30 with at most ``max_points`` occupied slices of width dq / 2^m (m = 0: the bins, which fit)."""
    low, high = 0, 30
    while low < high:
        middle = (low + high + 1) // 2
        if len(np.unique(_slices(norms, bins, dq, middle))) <= max_points:
            low = middle
        else:
            high = middle - 1
    return low


def _proportional_share(size: np.ndarray, budget: int) -> np.ndarray:
    """[n_strata] vectors to keep of each stratum: round(c size), at least 1, at most all, with the
    largest c that fits ``budget`` (there are at most ``budget`` strata, so c = 0 fits). Proportional
    allocation gives the vectors of a bin nearly equal weights, so a bin's average is as precise
    as a plain average over as many vectors."""
    def kept(c: float) -> np.ndarray:
        return np.clip(np.floor(c * size + 0.5), 1, size).astype(np.int64)

    if size.sum() <= budget:
        return size.astype(np.int64)
    low, high = 0.0, 1.0
    for _ in range(60):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if kept(middle).sum() <= budget else (low, middle)
    return kept(low)


def direct_structure_factor(stream: Iterable, sample: ReciprocalSample, symbols: List[str],
                            concentrations: Dict[str, float]) -> StructureFactor:
    """S(Q) from dynasor's direct sums over the vectors of ``sample`` (:func:`reciprocal_sample`),
    averaged in its |Q| bins with each vector's weight; ``stream`` is a
    :class:`~mlpot.analysis.dynasor_bridge.FrameStream`. Q of a bin is the mean |q| of all lattice
    vectors in it; bins without a vector are left out."""
    from dynasor import compute_static_structure_factors

    logging.getLogger("dynasor").setLevel(logging.WARNING)
    computed = compute_static_structure_factors(stream, sample.q_points, logging_interval=0)
    n_bins = len(sample.bin_q)
    total_weight = np.bincount(sample.bin, weights=sample.weight, minlength=n_bins)  # [n_bins]
    keep = total_weight > 0

    def binned(values: np.ndarray) -> np.ndarray:  # [n_points, 1] per vector -> [n_q] weighted bin means
        sums = np.bincount(sample.bin, weights=sample.weight * np.asarray(values).reshape(-1), minlength=n_bins)
        return sums[keep] / total_weight[keep]

    partials = {}
    for a, b in element_pairs(symbols):
        key = f"Sq_{a}_{b}" if a <= b else f"Sq_{b}_{a}"  # dynasor orders pairs alphabetically
        raw = binned(computed[key])  # [n_q] dynasor's S'_ab
        ca, cb = concentrations[a], concentrations[b]
        partials[(a, b)] = 1.0 + (raw / (1 if a == b else 2) - (ca if a == b else 0.0)) / (ca * cb)
    return StructureFactor(q=sample.bin_q[keep], partials=partials, concentrations=concentrations, number_number=binned(computed.Sq))


def _symbols(numbers: np.ndarray) -> List[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[z] for z in numbers]


def symbols_of(numbers: np.ndarray) -> List[str]:
    """Distinct element symbols, in order of atomic number."""
    return [s for s in sorted(set(_symbols(numbers)), key=lambda s: atomic_numbers[s])]
