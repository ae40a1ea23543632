"""``mlpot analyze``: one streamed pass for g(r), VDOS and MSD, then dynasor's passes for S(Q)
and S(Q, w), then every table, plot and ``summary.json`` at once.

Observables (``--observables``): ``rdf`` (g_ab(r), coordination numbers, neutron and X-ray
G(r)), ``sq`` (S(Q) by direct sum; with ``rdf`` also by transform of g(r)), ``vdos``, ``msd``,
``sqw``. The g(r) histogram costs O(N x atoms within r_max) per frame, which for large boxes
exceeds the direct sum; ``--observables sq`` alone skips it. ``auto`` takes rdf and sq,
vdos when the first frame has velocities and a time, msd when it has a time, and sqw when
``--sqw-q`` is given.
"""

import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
from tqdm import tqdm

from mlpot.analysis import output
from mlpot.analysis.dynamics import (Displacements, VelocityAutocorrelation, band_smoothing, dynamic_structure_factor, vdos_bands,
                                     MEV_PER_THZ, SHALLOW_DIP)
from mlpot.analysis.dynasor_bridge import FrameStream
from mlpot.analysis.settings import COMPARABLE, OBSERVABLES, AnalysisSettings
from mlpot.analysis.structure import (PairDistributionAccumulator, direct_structure_factor, element_pairs, first_shell_coordination,
                                      perpendicular_widths, reciprocal_sample, shortest_reciprocal_vector, structure_factor_from_rdf,
                                      symbols_of, transform_reliable_above)
from mlpot.analysis.trajectory import Frame, TimeAxis, TrajectorySource, require_periodic, require_same_cell
from mlpot.analysis.weights import XRayWeights, neutron_weights
from mlpot.errors import MLPotError

def choose_observables(settings: AnalysisSettings, source: TrajectorySource) -> List[str]:
    asked = set(settings.observables)
    unknown = asked - set(OBSERVABLES) - {"auto"}
    if unknown:
        raise MLPotError(f"--observables: unknown {', '.join(sorted(unknown))} (choose from auto, {', '.join(OBSERVABLES)})")
    if "auto" in asked:
        first = source.first_frame()
        asked |= {"rdf", "sq"}
        if first.time_fs is not None:
            asked.add("msd")
            if first.velocities is not None:
                asked.add("vdos")
        if settings.sqw_q:
            asked.add("sqw")
        asked.discard("auto")
    if "sqw" in asked and not settings.sqw_q:
        raise MLPotError("--observables sqw needs --sqw-q (the |Q| values, 1/Å)")
    if settings.compare is not None and COMPARABLE[settings.compare_with][1] not in asked:
        raise MLPotError(f"--compare-with {settings.compare_with} needs {COMPARABLE[settings.compare_with][1]} in --observables")
    return [name for name in OBSERVABLES if name in asked]


def analyze(source: TrajectorySource, settings: AnalysisSettings, directory: Path) -> List[Path]:
    """Compute everything asked for, then write it; returns the files written."""
    started = time.perf_counter()
    settings.validate()
    observables = choose_observables(settings, source)
    first = source.first_frame()
    symbols = symbols_of(first.numbers)
    neutron = neutron_weights(symbols)
    xray = XRayWeights(symbols)
    structural = {"rdf", "sq"} & set(observables)
    concentrations = dict(zip(symbols, _concentrations(first, symbols)))
    timed = {"vdos", "msd", "sqw"} & set(observables)
    if structural or "sqw" in observables:
        require_periodic(first, source, "g(r), S(Q) and S(Q, w)")
    r_max = settings.r_max if settings.r_max is not None else min(10.0, 0.5 * float(perpendicular_widths(first.cell).min()))
    if not r_max > settings.dr:
        raise MLPotError(f"--r-max must be larger than --dr ({settings.dr:g} Å), got {r_max:g}")
    lattice = reciprocal_sample(first.cell, settings.q_max, settings.dq, settings.q_points) if "sq" in observables else None

    rdf_acc = PairDistributionAccumulator(first.numbers, symbols, r_max, settings.dr) if "rdf" in observables else None
    vacf = VelocityAutocorrelation(first.numbers, symbols, settings.window) if "vdos" in observables else None
    msd = Displacements(first.numbers, symbols, settings.window) if "msd" in observables else None
    clock = TimeAxis(source, "VDOS, MSD and S(Q, w)", needs_velocities=vacf is not None) if timed else None

    def checked(frames: Iterator[Frame]) -> Iterator[Frame]:
        for frame in frames:
            if structural or "sqw" in observables:
                require_periodic(frame, source, "g(r), S(Q) and S(Q, w)")
            if "sq" in observables or "sqw" in observables:
                require_same_cell(first, frame, source, "S(Q) and S(Q, w)")
            if clock is not None:
                clock.add(frame)
            yield frame

    # S(Q) alone needs no pass of mlpot's own: dynasor's pass reads and checks the frames
    own_pass = observables != ["sq"]
    count = 0
    moving = False  # any non-zero velocity: all-zero velocities have no spectrum to normalise
    for frame in tqdm(checked(source.frames()) if own_pass else [], desc="reading", unit="frame", disable=None, leave=False):
        if rdf_acc is not None:
            rdf_acc.add(frame)
        if vacf is not None:
            vacf.add(frame)
            moving = moving or bool(frame.velocities.any())
        if msd is not None:
            msd.add(frame)
        count += 1
    if timed and count < 4:
        raise MLPotError(f"{source.path}: {count} frame(s); VDOS, MSD and S(Q, w) need at least 4")
    if vacf is not None and not moving:
        raise MLPotError(f"{source.path}: every velocity is zero in the frames used; the VDOS needs moving atoms (or leave vdos out of --observables)")
    dt_fs = clock.dt_fs if clock is not None else None

    files: Dict[str, object] = {}
    summary: Dict[str, object] = {
        "trajectory": str(source.path),
        "frames_used": count,
        "first_frame": source.skip,
        "every": source.every,
        "atoms": int(len(first.numbers)),
        "elements": {s: _symbols(first).count(s) for s in symbols},
        "observables": observables,
        "time_between_frames_fs": dt_fs,
        "neutron_b_coh_fm": neutron.coherent,
        "neutron_cross_section_barn": neutron.cross_section,
        "libraries": _versions(),
    }
    curves: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
    if rdf_acc is not None:
        rdf = rdf_acc.result()
        b = neutron.coherent
        f0 = {s: float(xray(s, np.array(0.0))) for s in symbols}
        columns = {"r_A": rdf.r, "g_total": rdf.total({s: 1.0 for s in symbols}), "g_neutron": rdf.total(b), "g_xray": rdf.total(f0),
                   "G_neutron_1/A2": rdf.reduced(b), "G_xray_1/A2": rdf.reduced(f0)}
        columns.update({f"g_{a}-{c}": g for (a, c), g in rdf.g.items()})
        columns.update({f"n_{a}-{c}": n for (a, c), n in rdf.coordination.items()})
        curves.update({name: (rdf.r, columns[name]) for name in ("G_neutron_1/A2", "G_xray_1/A2")})
        files["rdf.csv"] = output.csv_text(columns)
        files["rdf.png"] = output.line_plot([(rdf.r, g, f"{a}-{c}") for (a, c), g in rdf.g.items()] + [(rdf.r, columns["g_total"], "total")],
                                            "r (Å)", "g(r)", f"pair distribution functions, {count} frames")
        files["G_r.png"] = output.line_plot([(rdf.r, columns["G_neutron_1/A2"], "neutron"), (rdf.r, columns["G_xray_1/A2"], "X-ray (f at Q=0)")],
                                            "r (Å)", "G(r) (1/Å²)", "reduced pair distribution function G(r) = 4πρr(g(r) - 1)")
        summary["rdf"] = {"r_max_A": rdf_acc.r_max, "dr_A": settings.dr, "number_density_1/A3": rdf.density,
                          "first_shell_coordination": first_shell_coordination(rdf)}
    if "sq" in observables:
        stream = FrameStream(source.frames() if own_pass else checked(source.frames()), first, symbols, total=count or None, label="S(Q)")
        direct = direct_structure_factor(stream, lattice, symbols, concentrations)
        count = summary["frames_used"] = stream.number_of_frames_read
        sq_columns = _sq_columns(direct, symbols, neutron.coherent, xray, number_number=direct.number_number)
        files["sq.csv"] = output.csv_text(sq_columns)
        curves.update({name: (direct.q, sq_columns[name]) for name in ("S_neutron", "S_xray")})
        q_low = shortest_reciprocal_vector(first.cell)
        plotted = [(direct.q, sq_columns["S_neutron"], "neutron, direct sum"), (direct.q, sq_columns["S_xray"], "X-ray, direct sum")]
        title = f"direct sum: Q ≥ {q_low:.2f} 1/Å"
        summary["sq"] = {"direct_sum_q_range_1/A": [float(direct.q.min()), float(direct.q.max())], "box_smallest_q_1/A": q_low,
                         "box_q_spacing_1/A": q_low, "q_points": len(lattice.q_points), "q_points_limit": settings.q_points,
                         "lattice_vectors_up_to_q_max": 2 * lattice.lattice_vectors, "every_shell_kept": lattice.every_shell_kept,
                         "sampling": "all reciprocal-lattice vectors up to q_max, one of each +q/-q; where over --q-points, the same "
                                     "fraction (at least one) of every |q| shell, spread over its directions, weighted by the shell's size"
                                     + ("" if lattice.every_shell_kept else
                                        f"; this box has more shells than --q-points: shells merged into |q| slices "
                                        f"{lattice.stratum_width:.2g} 1/Å wide (raise --q-points to keep every shell)")}
        if rdf_acc is not None:
            q_transform = np.arange(settings.dq, settings.q_max + 0.5 * settings.dq, settings.dq)  # [n_q]
            transform = structure_factor_from_rdf(rdf, q_transform, rdf_acc.r_max)
            tr_columns = _sq_columns(transform, symbols, neutron.coherent, xray, number_number=transform.total({s: 1.0 for s in symbols}))
            files["sq_from_gr.csv"] = output.csv_text(tr_columns)
            valid_from = transform_reliable_above(rdf_acc.r_max)
            plotted += [(q_transform, tr_columns["S_neutron"], "neutron, from g(r)"), (q_transform, tr_columns["S_xray"], "X-ray, from g(r)")]
            title += f"; from g(r): reliable above {valid_from:.2f} 1/Å"
            summary["sq"].update({
                "from_gr_q_range_1/A": [float(q_transform[0]), float(q_transform[-1])],
                "from_gr_reliable_above_1/A": valid_from,
                "from_gr_window": "Lorch, sin(pi r/R)/(pi r/R), R = r_max",
                "from_gr_resolution_1/A": valid_from,
                "note": "the g(r) transform with the Lorch window is Q(S(Q)-1) averaged over Q +- pi/r_max: no ringing from the cut at "
                        "r_max, features narrower than 2 pi/r_max broadened to that width; above 2 pi/r_max the average stays within "
                        "[Q/2, 3Q/2]. It holds where g(r) has decayed to 1 by r_max (liquids, glasses), not for crystals",
            })
        files["sq.png"] = output.line_plot(plotted, "Q (1/Å)", "S(Q)", title)
    if vacf is not None:
        dos = vacf.result(dt_fs, neutron)
        columns = {"frequency_THz": dos.frequency_thz, "energy_meV": dos.frequency_thz * MEV_PER_THZ, "g_total_1/THz": dos.total}
        columns.update({f"g_{s}_1/THz": dos.partial[s] for s in symbols})
        columns["gdos_neutron_1/THz"] = dos.neutron
        files["vdos.csv"] = output.csv_text(columns)
        files["vdos.png"] = output.line_plot([(dos.frequency_thz, dos.total, "total")] + [(dos.frequency_thz, dos.partial[s], s) for s in symbols]
                                             + [(dos.frequency_thz, dos.neutron, "neutron GDOS")], "frequency (THz)", "g(f) (1/THz)",
                                             f"VDOS from the velocity autocorrelation, resolution {dos.resolution_thz:.2f} THz",
                                             x_max=_spectrum_end(dos.frequency_thz, dos.total))
        smoothing = band_smoothing(dos.frequency_thz, dos.total, dos.resolution_thz)
        bands = vdos_bands(dos.frequency_thz, dos.total, smoothing)
        main = bands[0]
        summary["vdos"] = {"resolution_THz": dos.resolution_thz, "main_band_centre_THz": main.centre_thz,
                           "main_band_THz": [main.low_thz, main.high_thz], "main_band_fraction_of_modes": main.fraction,
                           "bands": [{"THz": [b.low_thz, b.high_thz], "centre_THz": b.centre_thz, "fraction_of_modes": b.fraction}
                                     for b in bands if b.fraction >= 0.05],
                           "band_definition": f"total VDOS smoothed by a Gaussian of FWHM {smoothing:.3g} THz, split at its minima "
                                              f"(not at dips above {SHALLOW_DIP:.0%} of the lower neighbouring maximum); the main "
                                              f"band holds the most modes; centre: its g(f)-weighted mean frequency",
                           "nyquist_THz": float(dos.frequency_thz[-1]), "window_frames": settings.window}
    if msd is not None:
        diffusion = msd.result(dt_fs, settings.msd_fit)
        columns = {"time_ps": diffusion.time_ps}
        columns.update({f"msd_{s}_A2": diffusion.msd[s] for s in symbols})
        files["msd.csv"] = output.csv_text(columns)
        start, end = diffusion.fit_window_ps
        fit_t = np.array([start, end])
        files["msd.png"] = output.line_plot(
            [(diffusion.time_ps, diffusion.msd[s], f"{s}: D = {diffusion.coefficient[s]:.3g} ± {diffusion.error[s]:.2g} Å²/ps") for s in symbols]
            + [(fit_t, 6 * diffusion.coefficient[s] * fit_t + diffusion.intercept[s], f"{s} fit") for s in symbols],
            "time (ps)", "MSD (Å²)", f"fit {start:.3g}-{end:.3g} ps")
        summary["msd"] = {"diffusion_A2/ps": diffusion.coefficient, "error_A2/ps": diffusion.error,
                          "diffusion_cm2/s": {s: d * 1e-4 for s, d in diffusion.coefficient.items()},
                          "fit_window_ps": list(diffusion.fit_window_ps), "error_method": diffusion.error_method}
    if "sqw" in observables:
        stream = FrameStream(source.frames(), first, symbols, total=count, label="S(Q,w)")
        sqw = dynamic_structure_factor(stream, first.cell, settings.sqw_q, settings.dq, dt_fs, settings.window,
                                       concentrations, neutron)
        n_f = len(sqw.frequency_thz)
        columns = {"Q_1/A": np.repeat(sqw.q, n_f), "frequency_THz": np.tile(sqw.frequency_thz, len(sqw.q)),
                   "energy_meV": np.tile(sqw.frequency_thz * MEV_PER_THZ, len(sqw.q)),
                   "S_coh_1/meV": sqw.coherent.reshape(-1), "S_incoh_1/meV": sqw.incoherent.reshape(-1),
                   "S_coh_neutron_1/meV": sqw.coherent_neutron.reshape(-1), "S_incoh_neutron_1/meV": sqw.incoherent_neutron.reshape(-1)}
        files["sqw.csv"] = output.csv_text(columns)
        energy = sqw.frequency_thz * MEV_PER_THZ
        files["sqw.png"] = output.line_plot(
            [(energy, sqw.coherent[k], f"coherent, Q = {q:g}") for k, q in enumerate(sqw.q)]
            + [(energy, sqw.incoherent[k], f"incoherent, Q = {q:g}") for k, q in enumerate(sqw.q)],
            "energy (meV)", "S(Q, E) (1/meV)", "dynamic structure factor (number density)")
        summary["sqw"] = {"q_1/A": list(map(float, sqw.q)), "shell_mean_q_1/A": list(map(float, sqw.q_points)),
                          "energy_resolution_meV": float(energy[1] - energy[0]), "window_frames": settings.window}
    if settings.compare is not None:
        column, _ = COMPARABLE[settings.compare_with]
        x_ref, y_ref = output.read_reference(settings.compare, column)
        x, y = curves[column]
        r, used = output.r_factor(x_ref, y_ref, x, y)
        files["compare.png"] = output.line_plot([(x, y, f"mlpot {settings.compare_with}")], "Q (1/Å)" if column.startswith("S") else "r (Å)",
                                                column, f"R = {r:.4f} over {used} points", reference=(x_ref, y_ref, settings.compare.name))
        summary["compare"] = {"file": str(settings.compare), "observable": settings.compare_with, "r_factor": r, "points": used,
                              "definition": "sqrt(sum (sim - ref)^2 / sum ref^2) at the reference points inside the simulated range"}
    summary["wall_seconds"] = round(time.perf_counter() - started, 3)
    files["summary.json"] = summary
    return output.write_all(directory, files)


def _spectrum_end(frequency: np.ndarray, spectrum: np.ndarray) -> float:
    """1.3 x the highest frequency where the spectrum is above 1 % of its maximum."""
    return 1.3 * float(frequency[np.flatnonzero(spectrum > 0.01 * spectrum.max())[-1]])


def _sq_columns(sq, symbols, b, xray, number_number) -> Dict[str, np.ndarray]:
    f = {s: xray(s, sq.q) for s in symbols}
    columns = {"Q_1/A": sq.q, "S_number": number_number, "S_neutron": sq.total(b), "S_xray": sq.total(f)}
    columns.update({f"S_{a}-{c}": sq.partials[(a, c)] for a, c in element_pairs(symbols)})
    return columns


def _symbols(frame) -> List[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[z] for z in frame.numbers]


def _concentrations(frame, symbols: List[str]) -> List[float]:
    names = _symbols(frame)
    return [names.count(s) / len(names) for s in symbols]


def _versions() -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("mlpot", "dynasor", "ase", "matscipy", "numpy", "periodictable"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
