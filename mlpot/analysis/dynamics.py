"""Dynamics: vibrational density of states, mean squared displacement, S(Q, w).

All three read the trajectory in blocks of ``window`` frames (the last block may be shorter),
so memory is ``window x atoms x 3`` numbers however long the trajectory is.

- VDOS: mass-weighted velocity autocorrelation C_a(t) = < sum_{i in a} m_i v_i(0).v_i(t) >,
  averaged over every time origin in each block (zero-padded FFT), then Fourier transformed
  with dynasor's ``psd_from_acf`` after a Hann taper (the taper sets the resolution, about
  2 / (window x dt)). Mass weighting makes the spectrum the phonon DOS of a harmonic crystal
  (each mode holds k_B T). Normalised so that int g(f) df = 3 per atom; g(f) = sum_a c_a g_a(f).
  The neutron-weighted generalised DOS (incoherent approximation, no Debye-Waller or multi-phonon
  terms) is G(f) = sum_a c_a (sigma_a / M_a) g_a(f) / sum_a c_a (sigma_a / M_a), with sigma_a the
  total bound cross section. ``summary.json`` names the main band: the band of the smoothed
  spectrum holding the most modes (:func:`vdos_bands`), not the tallest line.
- MSD: positions unwrapped frame to frame by the minimum image (so atoms must move less than
  half the box between stored frames), centre-of-mass drift removed, MSD(t) per element
  averaged over every origin in a block (FFT algorithm), blocks averaged. D = slope / 6 from a
  straight-line fit over the fit window; its error is the standard error over blocks when at
  least two blocks cover the window, otherwise the fit's own standard error (a lower bound).
- S(Q, w): dynasor's ``compute_dynamic_structure_factors`` (coherent and incoherent) on up to
  48 reciprocal-lattice vectors of the box in a shell around each requested |Q| (as thick as
  ``--dq`` or the lattice spacing 2 pi / L, whichever is larger), averaged over the shell.
  Windows start every window/4 frames.
"""

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
from ase.data import atomic_masses, atomic_numbers

from mlpot.analysis.structure import shortest_reciprocal_vector
from mlpot.analysis.trajectory import Frame
from mlpot.analysis.weights import NeutronWeights
from mlpot.errors import MLPotError

MEV_PER_THZ = 4.135667696  # h in meV/THz
ATOM_CHUNK = 2048  # atoms per FFT, to bound temporary memory


def _indices(numbers: np.ndarray, symbols: List[str]) -> Dict[str, np.ndarray]:
    return {s: np.flatnonzero(numbers == atomic_numbers[s]) for s in symbols}


def _autocorrelation_sum(x: np.ndarray) -> np.ndarray:
    """sum over atoms and components of sum_t x(t).x(t + lag), for lags 0..L-1; x is [L, n, 3]."""
    length = x.shape[0]
    spectrum = np.fft.rfft(x, n=2 * length, axis=0)  # [L + 1, n, 3]
    power = (spectrum.real**2 + spectrum.imag**2).sum(axis=(1, 2))  # [L + 1]
    return np.fft.irfft(power, n=2 * length)[:length]  # [L]


@dataclass
class VibrationalDOS:
    frequency_thz: np.ndarray  # [n_f]
    total: np.ndarray  # [n_f] 1/THz, int = 3
    partial: Dict[str, np.ndarray]  # [n_f] per atom of each element, int = 3
    neutron: np.ndarray  # [n_f] generalised DOS, int = 3
    resolution_thz: float


class VelocityAutocorrelation:
    def __init__(self, numbers: np.ndarray, symbols: List[str], window: int):
        self.indices = _indices(numbers, symbols)
        self.sqrt_mass = np.sqrt(atomic_masses[numbers])[:, None]  # [N, 1] sqrt(amu)
        self.buffer = np.empty((window, len(numbers), 3))  # [window, N, 3] velocities, Å/fs
        self.fill = 0
        self.sums = {s: np.zeros(window) for s in symbols}  # [window] sum over origins and atoms
        self.origins = np.zeros(window)  # [window] number of origins per lag

    def add(self, frame: Frame) -> None:
        self.buffer[self.fill] = frame.velocities * self.sqrt_mass
        self.fill += 1
        if self.fill == len(self.buffer):
            self._flush()

    def _flush(self) -> None:
        length = self.fill
        for symbol, indices in self.indices.items():
            for start in range(0, len(indices), ATOM_CHUNK):
                chunk = self.buffer[:length, indices[start : start + ATOM_CHUNK]]
                self.sums[symbol][:length] += _autocorrelation_sum(chunk)
        self.origins[:length] += length - np.arange(length)
        self.fill = 0

    def result(self, dt_fs: float, neutron: NeutronWeights) -> VibrationalDOS:
        if self.fill:
            self._flush()
        lags = int(np.count_nonzero(self.origins))
        if lags < 4:
            raise MLPotError(f"the VDOS needs at least 4 frames per window, got {lags}")
        from dynasor.tools.acfs import psd_from_acf

        taper = np.cos(0.5 * np.pi * np.arange(lags) / lags) ** 2  # right half of a Hann window
        spectra = {}
        for symbol, sums in self.sums.items():
            acf = sums[:lags] / self.origins[:lags] * taper  # [lags] amu Å^2/fs^2
            omega, psd = psd_from_acf(acf, dt=dt_fs)  # omega in rad/fs
            spectra[symbol] = np.clip(psd, 0.0, None)
        frequency = omega / (2.0 * np.pi) * 1000.0  # THz
        step = frequency[1] - frequency[0]
        total = sum(spectra.values())
        scale = 3.0 / (total.sum() * step)
        counts = {s: len(i) for s, i in self.indices.items()}
        n_atoms = sum(counts.values())
        partial = {s: spectra[s] * scale * n_atoms / counts[s] for s in spectra}
        weight = {s: counts[s] / n_atoms * neutron.cross_section[s] / atomic_masses[atomic_numbers[s]] for s in spectra}
        gdos = sum(weight[s] * partial[s] for s in spectra) / sum(weight.values())
        return VibrationalDOS(frequency, total * scale, partial, gdos, resolution_thz=2000.0 / (lags * dt_fs))


SHALLOW_DIP = 0.7  # a minimum of the smoothed VDOS above this fraction of the lower neighbouring maximum does not split bands


@dataclass
class SpectralBand:
    low_thz: float  # low_thz..high_thz: where the smoothed spectrum is above 1 % of the band's top, between its bounding minima
    high_thz: float
    centre_thz: float  # mean frequency within the band, weighted by g(f)
    fraction: float  # of all modes (int g df / 3)


def vdos_bands(frequency_thz: np.ndarray, total: np.ndarray, smoothing_fwhm_thz: float) -> List[SpectralBand]:
    """The bands of a VDOS ([n_f] each), heaviest first, so that the first is its main band by
    spectral weight, not its tallest line (in a small cell the spectrum is a few sharp lines, and
    one degenerate line can stand above a band that holds far more modes).

    The spectrum is smoothed with a Gaussian of the given FWHM (mirrored at f = 0, where g(f) is
    even) and split at the minima of the smoothed curve, except at shallow ones (above
    ``SHALLOW_DIP`` of the lower neighbouring maximum, e.g. noise on one band). Each band's
    weight is the integral of the unsmoothed g(f) between its edges.
    """
    step = float(frequency_thz[1] - frequency_thz[0])
    sigma = smoothing_fwhm_thz / (2.0 * np.sqrt(2.0 * np.log(2.0))) / step  # in bins
    half = int(np.ceil(4 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)  # [2 half + 1]
    mirror = total[1 : half + 1][::-1]  # g(-f) = g(f)
    padded = np.zeros(len(total) + 2 * half)  # [n_f + 2 half]: mirrored below 0, nothing above the end
    padded[half - len(mirror) : half], padded[half : half + len(total)] = mirror, total
    smooth = np.convolve(padded, kernel / kernel.sum(), mode="valid")  # [n_f]
    inner = np.flatnonzero((smooth[1:-1] < smooth[:-2]) & (smooth[1:-1] <= smooth[2:])) + 1  # local minima
    edges = [0, *inner.tolist(), len(total)]  # band k is [edges[k], edges[k + 1])
    peaks = [float(smooth[a:b].max()) for a, b in zip(edges[:-1], edges[1:])]
    while len(peaks) > 1:  # merge across the shallowest dip while it is shallow
        dips = [smooth[edges[k + 1]] / max(min(peaks[k], peaks[k + 1]), 1e-300) for k in range(len(peaks) - 1)]
        k = int(np.argmax(dips))
        if dips[k] <= SHALLOW_DIP:
            break
        del edges[k + 1]
        peaks[k : k + 2] = [max(peaks[k], peaks[k + 1])]
    modes = total.sum() * step
    bands = []
    for a, b in zip(edges[:-1], edges[1:]):
        weight = total[a:b].sum() * step
        centre = float((frequency_thz[a:b] * total[a:b]).sum() * step / weight) if weight > 0 else float(frequency_thz[a])
        visible = a + np.flatnonzero(smooth[a:b] >= 0.01 * smooth[a:b].max())  # edges where the band is above 1 % of its top
        bands.append(SpectralBand(float(frequency_thz[visible[0]]), float(frequency_thz[visible[-1]]), centre, float(weight / modes)))
    return sorted(bands, key=lambda band: -band.fraction)


def band_smoothing(frequency_thz: np.ndarray, total: np.ndarray, resolution_thz: float) -> float:
    """FWHM (THz) that :func:`vdos_bands` smooths with: twice the resolution, or 5 % of the
    frequency below which 99 % of the modes lie, whichever is larger (lines of one band merge;
    bands a few times further apart stay apart)."""
    cumulative = np.cumsum(total) / total.sum()
    f99 = float(frequency_thz[np.searchsorted(cumulative, 0.99)])
    return max(2.0 * resolution_thz, 0.05 * f99)


@dataclass
class Diffusion:
    time_ps: np.ndarray  # [n_lags]
    msd: Dict[str, np.ndarray]  # [n_lags] Å^2 per element
    coefficient: Dict[str, float]  # Å^2/ps
    error: Dict[str, float]  # Å^2/ps
    fit_window_ps: Tuple[float, float]
    error_method: str
    intercept: Dict[str, float] = field(default_factory=dict)  # Å^2, of the fit line


class Displacements:
    def __init__(self, numbers: np.ndarray, symbols: List[str], window: int):
        self.indices = _indices(numbers, symbols)
        self.masses = atomic_masses[numbers]  # [N]
        self.buffer = np.empty((window, len(numbers), 3))  # [window, N, 3] unwrapped positions, Å
        self.fill = 0
        self.blocks: List[Dict[str, np.ndarray]] = []  # per block: [L] MSD per element
        self._previous: Optional[Frame] = None
        self._unwrapped: Optional[np.ndarray] = None  # [N, 3]

    def add(self, frame: Frame) -> None:
        if self._previous is None:
            self._unwrapped = frame.positions.copy()
        else:
            step = frame.positions - self._previous.positions  # [N, 3]
            if frame.pbc.any():
                fractional = step @ np.linalg.inv(frame.cell)
                fractional[:, frame.pbc] -= np.round(fractional[:, frame.pbc])
                step = fractional @ frame.cell
            self._unwrapped = self._unwrapped + step
        self._previous = frame
        centre = self.masses @ self._unwrapped / self.masses.sum()
        self.buffer[self.fill] = self._unwrapped - centre
        self.fill += 1
        if self.fill == len(self.buffer):
            self._flush()

    def _flush(self) -> None:
        length = self.fill
        block = {}
        for symbol, indices in self.indices.items():
            total = np.zeros(length)
            for start in range(0, len(indices), ATOM_CHUNK):
                total += _msd_sum(self.buffer[:length, indices[start : start + ATOM_CHUNK]])
            block[symbol] = total / len(indices)
        self.blocks.append(block)
        self.fill = 0

    def result(self, dt_fs: float, fit_ps: Optional[Tuple[float, float]]) -> Diffusion:
        if self.fill:
            self._flush()
        longest = max(len(next(iter(b.values()))) for b in self.blocks)
        if longest < 3:
            raise MLPotError(f"the MSD needs at least 3 frames per window, got {longest}")
        time_ps = np.arange(longest) * dt_fs / 1000.0
        symbols = list(self.indices)
        msd = {}
        for s in symbols:
            sums, weights = np.zeros(longest), np.zeros(longest)
            for block in self.blocks:
                length = len(block[s])
                origins = length - np.arange(length)
                sums[:length] += block[s] * origins
                weights[:length] += origins
            msd[s] = sums / weights
        start, end = fit_ps if fit_ps is not None else (0.2 * time_ps[-1], 0.8 * time_ps[-1])
        if not 0 <= start < end <= time_ps[-1] + 1e-9:
            raise MLPotError(f"--msd-fit {start:g} {end:g} ps must lie within 0..{time_ps[-1]:g} ps (the window) and start before it ends")
        inside = (time_ps >= start) & (time_ps <= end)
        if inside.sum() < 4:
            widen = "widen it" if fit_ps is not None else "give a longer --window"
            raise MLPotError(f"the MSD fit window {start:g}-{end:g} ps holds fewer than 4 time lags; {widen}")
        coefficient, error, intercept = {}, {}, {}
        lags = np.flatnonzero(inside)
        covering = [b for b in self.blocks if len(next(iter(b.values()))) > lags[-1]]  # blocks reaching the fit's end
        method = f"standard error over {len(covering)} blocks" if len(covering) >= 2 else "fit standard error (one block; a lower bound)"
        for s in symbols:
            (slope, offset), covariance = np.polyfit(time_ps[inside], msd[s][inside], 1, cov=True)
            coefficient[s], intercept[s] = slope / 6.0, offset
            if len(covering) >= 2:
                slopes = [np.polyfit(time_ps[lags], b[s][lags], 1)[0] for b in covering]
                error[s] = float(np.std(slopes, ddof=1) / np.sqrt(len(slopes)) / 6.0)
            else:
                error[s] = float(np.sqrt(max(covariance[0, 0], 0.0)) / 6.0)
        return Diffusion(time_ps, msd, coefficient, error, (float(start), float(end)), method, intercept)


def _msd_sum(x: np.ndarray) -> np.ndarray:
    """sum over atoms of the origin-averaged MSD for lags 0..L-1 (FFT algorithm); x is [L, n, 3]."""
    length = x.shape[0]
    squares = (x**2).sum(axis=2)  # [L, n]
    squares = np.vstack([squares, np.zeros((1, squares.shape[1]))])  # [L + 1, n]; index -1 reads 0
    spectrum = np.fft.rfft(x, n=2 * length, axis=0)
    correlation = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=2 * length, axis=0)[:length].sum(axis=2)  # [L, n]
    origins = (length - np.arange(length))[:, None]  # [L, 1]
    running = 2.0 * squares.sum(axis=0)  # [n]
    first = np.empty((length, squares.shape[1]))  # [L, n]
    for lag in range(length):
        running = running - squares[lag - 1] - squares[length - lag]
        first[lag] = running / (length - lag)
    return (first - 2.0 * correlation / origins).sum(axis=1)


@dataclass
class DynamicStructureFactor:
    q: np.ndarray  # [n_q] requested |Q|, 1/Å
    q_points: np.ndarray  # [n_q] lattice vectors averaged per |Q|
    frequency_thz: np.ndarray  # [n_f]
    coherent: np.ndarray  # [n_q, n_f] number-number, 1/meV
    incoherent: np.ndarray  # [n_q, n_f] 1/meV
    coherent_neutron: np.ndarray  # [n_q, n_f] b_coh-weighted, normalised by <b_coh^2>, 1/meV
    incoherent_neutron: np.ndarray  # [n_q, n_f] b_inc-weighted, normalised by <b_inc^2>, 1/meV


def dynamic_structure_factor(stream, cell: np.ndarray, q_values: List[float], dq: float, dt_fs: float, window: int,
                             concentrations: Dict[str, float], neutron: NeutronWeights, points_per_q: int = 48,
                             seed: int = 0) -> DynamicStructureFactor:
    from dynasor import compute_dynamic_structure_factors, get_spherical_qpoints

    logging.getLogger("dynasor").setLevel(logging.WARNING)
    rng = np.random.default_rng(seed)
    chosen, label = [], []
    width = max(dq, shortest_reciprocal_vector(cell))  # a shell as thick as the lattice spacing holds points
    for k, q in enumerate(q_values):
        shell = get_spherical_qpoints(cell, q_max=q + 0.5 * width, q_min=max(q - 0.5 * width, 1e-9))  # [n, 3]
        if len(shell) == 0:
            raise MLPotError(f"--sqw-q {q:g}: no reciprocal-lattice vector of the box within {q:g} ± {0.5 * width:g} 1/Å "
                             f"(the box allows |Q| >= {shortest_reciprocal_vector(cell):.3f} 1/Å); widen --dq or change Q")
        if len(shell) > points_per_q:
            shell = shell[rng.choice(len(shell), points_per_q, replace=False)]
        chosen.append(shell)
        label += [k] * len(shell)
    q_points = np.vstack(chosen)  # [n_points, 3]
    label = np.array(label)
    if window <= 3:
        raise MLPotError(f"--window must be at least 4 frames for S(Q, w), got {window}")
    sample = compute_dynamic_structure_factors(stream, q_points, dt=dt_fs, window_size=window - 1,
                                               window_step=max(1, window // 4), calculate_incoherent=True, logging_interval=0)
    symbols = sorted(concentrations)

    def shell_mean(array: np.ndarray) -> np.ndarray:  # [n_points, n_f] -> [n_q, n_f], in 1/meV
        return np.array([array[label == k].mean(axis=0) for k in range(len(q_values))]) / (1000.0 * MEV_PER_THZ)

    coherent_n = sum(neutron.coherent[a] * neutron.coherent[b] * np.asarray(sample[f"Sqw_coh_{a}_{b}"])
                     for a in symbols for b in symbols if a <= b)
    incoherent_n = sum(neutron.incoherent[a] ** 2 * np.asarray(sample[f"Sqw_incoh_{a}"]) for a in symbols)
    mean_coh = sum(concentrations[a] * neutron.coherent[a] ** 2 for a in symbols)
    mean_inc = sum(concentrations[a] * neutron.incoherent[a] ** 2 for a in symbols)
    return DynamicStructureFactor(
        q=np.array(q_values, dtype=float),
        q_points=np.array([np.linalg.norm(q_points[label == k], axis=1).mean() for k in range(len(q_values))]),
        frequency_thz=np.asarray(sample.omega) / (2.0 * np.pi) * 1000.0,
        coherent=shell_mean(np.asarray(sample.Sqw_coh)),
        incoherent=shell_mean(np.asarray(sample.Sqw_incoh)),
        coherent_neutron=shell_mean(coherent_n) / mean_coh,
        incoherent_neutron=shell_mean(incoherent_n) / mean_inc if mean_inc > 0 else shell_mean(incoherent_n) * 0.0,
    )
