"""NUPACK 4 backend: complex free energies from NUPACK's own partition functions.

NUPACK is not on PyPI; it is used when ``import nupack`` works (install it from https://nupack.org,
free for academic use, with ``pip install nupack -f <unpacked download>/package``).

What is computed
----------------
With ``Model(material='dna', celsius=T, sodium=..., magnesium=0, ensemble='stacking')`` (NUPACK 4's
defaults apart from the material and temperature, i.e. its ``dna04`` parameters), each strand's
complex ``(X)``, its homodimer ``(X+X)`` and each requested heterodimer ``(X+Y)`` are evaluated by
:func:`nupack.complex_analysis` with ``compute=['pfunc']``; their ``free_energy`` values are
NUPACK's complex free energies, which include the strand association penalty and, for ``(X+X)``, the
rotational symmetry correction.

Standard state
--------------
NUPACK computes test-tube equilibria in mole fractions, and therefore uses the association penalty
``dG_assoc = dG_assoc(1 M) - RT ln rho_H2O(T)`` (NUPACK 4 paper, supplementary S1.1). primo's
equilibrium solver (:mod:`primo.thermo.equilibrium`) works in mol/L, so each two-strand free
energy is converted back to the 1 M standard state, ``G(1 M) = G(NUPACK) + RT ln rho_H2O(T)``, with
the water molarity formula NUPACK uses (Tanaka et al. 2001). The equilibrium concentrations are
then exactly NUPACK's: ``x_AB = K_x x_A x_B`` with ``x = c / rho`` and ``K_x = rho K_1M`` is the
same equation as ``[AB] = K_1M [A][B]``.
"""

from __future__ import annotations

import math

import numpy as np

from .equilibrium import GAS_CONSTANT

__all__ = ["available", "version", "water_molarity", "strand_energies", "pair_energies",
           "INSTALL_HINT"]

INSTALL_HINT = ("NUPACK is not on PyPI: download NUPACK 4 from https://nupack.org (free academic "
                "license) and run `pip install nupack -f <unpacked download>/package`, or use "
                "--backend vienna")


def available() -> bool:
    try:
        import nupack  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str:
    import nupack

    return str(getattr(nupack, "__version__", "unknown"))


def water_molarity(celsius: float) -> float:
    """Molarity of pure water (mol/L) at ``celsius`` (Tanaka et al., Metrologia 38, 301, 2001)."""
    t = float(celsius)
    a1, a2, a3, a4, a5 = -3.983035, 301.797, 522528.9, 69.34881, 999.974950
    density = a5 * (1.0 - (t + a1) ** 2 * (t + a2) / a3 / (t + a4))  # g/L
    return density / 18.0152


_MODELS: dict = {}


def _model(temperature, sodium, magnesium, ensemble):
    import nupack

    key = (float(temperature), float(sodium), float(magnesium), str(ensemble))
    m = _MODELS.get(key)
    if m is None:
        m = _MODELS[key] = nupack.Model(material="dna", ensemble=ensemble,
                                        celsius=float(temperature), sodium=float(sodium),
                                        magnesium=float(magnesium))
    return m


def _free_energies(strand_lists, model):
    """NUPACK complex free energies (kcal/mol, NUPACK's mole-fraction convention)."""
    import nupack

    names: dict = {}
    strands = []
    for seqs in strand_lists:
        for s in seqs:
            if s not in names:
                names[s] = nupack.Strand(s, name=f"s{len(names)}")
                strands.append(names[s])
    complexes = [nupack.Complex([names[s] for s in seqs]) for seqs in strand_lists]
    spec = nupack.SetSpec(max_size=0, include=complexes)
    cset = nupack.ComplexSet(strands=strands, complexes=spec)
    result = nupack.complex_analysis(cset, model=model, compute=["pfunc"])
    out = np.empty(len(complexes), dtype=np.float64)
    for i, c in enumerate(complexes):
        g = float(result[c].free_energy)
        out[i] = g if math.isfinite(g) else math.inf
    return out


def _to_molar(g, n_strands, temperature):
    rt = GAS_CONSTANT * (float(temperature) + 273.15)
    return g + (n_strands - 1) * rt * math.log(water_molarity(temperature))


def strand_energies(seqs, *, temperature: float, sodium: float = 1.0, magnesium: float = 0.0,
                    ensemble: str = "stacking") -> np.ndarray:
    """``(n, 2)``: monomer and homodimer free energies (kcal/mol, 1 M standard state)."""
    model = _model(temperature, sodium, magnesium, ensemble)
    lists = []
    for s in seqs:
        lists += [[s], [s, s]]
    g = _free_energies(lists, model).reshape(len(seqs), 2)
    g[:, 1] = _to_molar(g[:, 1], 2, temperature)
    return g


def pair_energies(pairs, *, temperature: float, sodium: float = 1.0, magnesium: float = 0.0,
                  ensemble: str = "stacking") -> np.ndarray:
    """``(n,)``: heterodimer free energies (kcal/mol, 1 M standard state)."""
    model = _model(temperature, sodium, magnesium, ensemble)
    g = _free_energies([[a, b] for a, b in pairs], model)
    return _to_molar(g, 2, temperature)
