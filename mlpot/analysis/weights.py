"""Scattering weights from dynasor's tables.

- Neutrons: bound coherent scattering length b_coh (fm) and incoherent cross section (barn) of
  the natural isotope mixture, from periodictable's table (Sears, Neutron News 3, 26 (1992),
  with its later corrections). dynasor's own table averages the isotopes' incoherent lengths,
  which loses isotope incoherence (Cu: 0.06 barn instead of 0.55), so periodictable is used.
- X-rays: atomic form factors f0(Q) (electrons) from the Waasmaier-Kirfel (1995)
  parametrisation (``XRayFormFactors``); elements it lacks (H) from International Tables C
  (2006). Q is 4 pi sin(theta) / lambda in 1/Å, as in dynasor.

An element that neither table holds stops the run with one line naming it.
"""

import warnings
from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np

from mlpot.errors import MLPotError
from mlpot.optional import require_extra


@dataclass
class NeutronWeights:
    coherent: Dict[str, float]  # b_coh, fm
    incoherent: Dict[str, float]  # b_inc = sqrt(sigma_inc / 4 pi), fm
    cross_section: Dict[str, float]  # total bound cross section sigma_coh + sigma_inc, barn


def neutron_weights(symbols: Sequence[str]) -> NeutronWeights:
    periodictable = require_extra("periodictable", "analysis", "neutron scattering weights (mlpot analyze, mlpot phonons)")

    coherent, incoherent, total = {}, {}, {}
    for symbol in symbols:
        data = getattr(getattr(periodictable, symbol, None), "neutron", None)
        if data is None or data.b_c is None or data.incoherent is None or data.total is None:
            raise MLPotError(f"element {symbol}: no neutron scattering length in periodictable's table")
        coherent[symbol] = float(data.b_c)
        incoherent[symbol] = float(np.sqrt(100.0 * data.incoherent / (4.0 * np.pi)))  # 1 barn = 100 fm^2
        total[symbol] = float(data.total)
    return NeutronWeights(coherent, incoherent, total)


class XRayWeights:
    """``weights(symbol, q)``: f0 at |Q| = q (1/Å), elementwise over an array of q."""

    def __init__(self, symbols: Sequence[str]):
        XRayFormFactors = require_extra("dynasor.post_processing", "analysis", "X-ray form factors (mlpot analyze)").XRayFormFactors

        self._tables = {}
        for symbol in symbols:
            for source in ("waasmaier-1995", "itc-2006"):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # dynasor warns and sets f = 0 for H; we use ITC instead
                        table = XRayFormFactors([symbol], source=source)
                    if symbol in table.parameters.index:
                        self._tables[symbol] = table
                        break
                except ValueError:
                    continue
            else:
                raise MLPotError(f"element {symbol}: no X-ray form factor in dynasor's tables (Waasmaier-Kirfel 1995, ITC 2006)")

    def __call__(self, symbol: str, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # beyond the fit's range dynasor warns once per q value
            return np.array([float(self._tables[symbol].get_weight_coh(symbol, value)) for value in q.reshape(-1)]).reshape(q.shape)
