"""ViennaRNA backend: ensemble free energies of single strands and two-strand complexes (DNA).

What is computed
----------------
For a strand ``X`` the monomer ensemble free energy ``G_X = -RT ln Z_X`` (``fold_compound.pf``), for
two strands ``X``, ``Y`` the free energy of the *connected* dimer ensemble (structures with at least
one intermolecular pair), ``G_XY = -RT ln Z_XY`` (``fold_compound.pf_dimer``, field ``FcAB``). Both
are in kcal/mol.

Parameters: ViennaRNA's DNA set ``dna_mathews2004`` (the DNA nearest-neighbor parameters of
Mathews et al. 2004 / RNAstructure in ViennaRNA's format), extrapolated to the requested
temperature with its enthalpies, dangles ``d2`` (ViennaRNA's default), G·T pairs allowed as the
set defines them (``gt_pairs=False`` forbids them), no lonely-pair restriction.

* Its Watson-Crick stack free energies at 37 °C are SantaLucia & Hicks (2004)'s to the file's
  0.1 kcal/mol precision (checked against their Table 1). Its stack enthalpies are not (e.g.
  AT/TA -5.3 vs -7.2 kcal/mol), which shifts 21 °C stack energies by ~0.05 kcal/mol; replacing
  them by SantaLucia's moved the mean yield of the mismatch S-curve by at most 0.02 (12 targets
  x 6 mismatch fractions), so the file is used as shipped by default (``stacks="santalucia"``
  replaces them, see "Stacks" below).
* The set ships with a bimolecular initiation (``DuplexInit``) of ``dG37 = 1.00``, ``dH = -7.20``
  kcal/mol. By default primo replaces it by the published SantaLucia & Hicks (2004) duplex
  initiation, ``dG37 = 1.96``, ``dH = 0.20`` kcal/mol, the value of the SantaLucia-based DNA
  parameters NUPACK uses, so that dimers pay the same standard-state penalty as in the NUPACK
  simulations of the paper (at 21 °C the two differ by 1.3 kcal/mol, a factor ~9 in ``K``).
  ``duplex_init=None`` keeps the file's value.

Loop enthalpies (``loops``)
---------------------------
ViennaRNA extrapolates every term from 37 °C with ``dG(T) = dH - (dH - dG37) T / 310.15``. Several
loop tables of ``dna_mathews2004`` carry enthalpies *above* their 37 °C free energy, i.e. a loop
that gains entropy on forming: every 1x2 internal loop (``int21``: ``dH = +25`` kcal/mol against
``dG37`` of about +2.5), 1,147 of the 1,225 1x1 loops (``dH`` up to +9.3), 3,376 of the 9,216 2x2
loops, the 1-nt bulge (+18.9 against +2.9) and the multiloop closing term (+9.0 against +3.0).
Their free energies then fall with temperature, and above about 60 °C structures made of chains of
such loops become *more* stable as the temperature rises: with the file as shipped the mean
minimum free energy of 20 random 80-mers is -3.3 kcal/mol at 60 °C, -11.0 at 80 °C and -24.2 at
95 °C (-0.0 with the correction below), and 50 %-mutated 80-mer pairs bind at 94 °C more often than
at 60 °C. This breaks the anneal, which evaluates binding at up to 95 °C.

``loops="clipped"`` (primo's default) caps each of those loop enthalpies (``hairpin``, ``bulge``,
``internal``, ``int11``, ``int21``, ``int22``, the multiloop terms) at ``min(dG37, 0)``, so that no
loop gains entropy on forming (``dS <= 0``; loop initiation purely entropic, SantaLucia & Hicks 2004,
as the file's own generic internal loops already are). Free energies at 37 °C are unchanged;
stacks, mismatches, dangles and the terminal penalties are as shipped. The mean minimum free
energy above then rises monotonically with temperature (-13.7 at 21 °C, -1.2 at 60 °C, -0.1 at
80 °C). ``loops="shipped"`` keeps the file as it is (models trained before this option).

Stacks (``stacks``)
-------------------
``stacks="vienna"`` (the default) keeps the file's Watson-Crick stacks. ``stacks="santalucia"``
replaces the free energy at 37 °C *and* the enthalpy of the 16 Watson-Crick entries of the file's
``# stack`` and ``# stack_enthalpies`` tables by the unified nearest-neighbor parameters of

    SantaLucia J Jr, Hicks D (2004). The thermodynamics of DNA structural motifs. Annu. Rev.
    Biophys. Biomol. Struct. 33:415-440, Table 1 (1 M NaCl),

the published set NUPACK's ``dna04`` parameters are documented to follow (NUPACK's own file
was not available here to compare entry by entry). Their 37 °C free energies are those of
SantaLucia (1998) PNAS 95:1460, Table 2; the 2004 review revises AA/TT (dH -7.9 -> -7.6 kcal/mol,
dS -22.2 -> -21.3 cal/K/mol, dG37 unchanged). The table used (``SANTALUCIA_2004_STACKS``;
"XY/X'Y'" is 5'-XY-3' paired with 3'-X'Y'-5'), next to the file's values:

    ========  =========  =========  ===========  =======  =========
    stack     dH (kcal)  dS (e.u.)  dG37 (kcal)  file dH  file dG37
    ========  =========  =========  ===========  =======  =========
    AA/TT     -7.6       -21.3      -1.00        -7.2     -1.0
    AT/TA     -7.2       -20.4      -0.88        -5.3     -0.9
    TA/AT     -7.2       -21.3      -0.58        -6.7     -0.6
    CA/GT     -8.5       -22.7      -1.45        -9.9     -1.5
    GT/CA     -8.4       -22.4      -1.44        -7.8     -1.4
    CT/GA     -7.8       -21.0      -1.28        -5.8     -1.3
    GA/CT     -8.2       -22.2      -1.30        -8.5     -1.3
    CG/GC     -10.6      -27.2      -2.17        -9.8     -2.2
    GC/CG     -9.8       -24.4      -2.24        -7.9     -2.2
    GG/CC     -8.0       -19.9      -1.84        -7.5     -1.8
    ========  =========  =========  ===========  =======  =========

(the file's columns are read back from ViennaRNA's ``dna_mathews2004`` by
``tests/test_stacks.py``; its 37 °C free energies agree with Table 1 to their 0.1 kcal/mol, so
the choice moves mainly the enthalpies, i.e. the energies away from 37 °C). ViennaRNA indexes a
stack by the pair types of its closing pair ``(i, j)`` and of its inner pair read backwards
``(l, k)``, in the order CG, GC, GT, TG, AT, TA, NN, in dcal/mol: 5'-XY-3'/3'-X'Y'-5' is
``stack[XX'][Y'Y]``, and the same stack read from the other strand is ``stack[Y'Y][XX']``; both
are set (dG37 and dH; ViennaRNA derives the entropy). Mismatch, G·T and ``NN`` entries, the
terminal A·T penalty, dangles and loops are as the rest of the file (and ``loops``) has them.
The dH values agree in every transcription of Table 1 consulted (MELTING 5's
``Santalucia2004nn.xml``, Biopython's ``DNA_NN4``); some copies carry dS = -20.4 for TA/AT and
-19.0 for GG/CC, which contradict the published dG37 (-0.58, -1.84); -21.3 and -19.9 (as in
SantaLucia 1998) reproduce them, and only dH and dG37 enter the file.

Standard state and symmetry
---------------------------
``pf_dimer`` adds ``DuplexInit`` (published for a 1 M standard state) to every dimer structure, so
``G_XY`` is a free energy in the 1 M standard state and ``K = exp(-(G_XY - G_X - G_Y)/RT)`` is in
L/mol. For identical strands ViennaRNA adds ``RT ln 2`` to ``G_XX`` (checked here by enumerating
every structure of short homodimers: ViennaRNA's value is the distinguishable-strand sum plus
``RT ln 2`` within 0.01 kcal/mol), which is the rotational-symmetry correction NUPACK applies, so
``K_XX = exp(-(G_XX - 2 G_X)/RT)`` needs no further factor.

Salt: ``sodium`` (mol/L) is mapped to ViennaRNA's ``salt = sodium + 0.021`` so that 1 M Na+ is
ViennaRNA's reference condition (1.021 M, the 1 M NaCl + buffer of the melting experiments) and no
correction is applied, as in NUPACK at its default 1.0 M; other values use ViennaRNA's salt model
with its DNA helix geometry.

Processes
---------
ViennaRNA keeps its energy parameters in process-global state. :func:`ensure_parameters` loads the
requested set once per process (and again only if a different set is asked for), so the functions
here can be called from worker processes (``forkserver``/``spawn``, Dask workers) that never ran
the caller's set-up code. Fold compounds copy the parameters when created, under a lock.
"""

from __future__ import annotations

import functools
import math
import re
import threading

import numpy as np

__all__ = ["ensure_parameters", "monomer_energy", "dimer_energy", "strand_energies",
           "pair_energies", "version", "NO_COMPLEX", "VIENNA_DUPLEX_INIT", "LOOP_MODES",
           "loop_enthalpy_changes", "STACK_MODES", "SANTALUCIA_2004_STACKS", "minimum_free_energy",
           "check_perturb", "PERTURBED_TABLES"]

#: (dG37, dH) kcal/mol as shipped in ViennaRNA's dna_mathews2004.par
VIENNA_DUPLEX_INIT = (1.00, -7.20)
#: ViennaRNA returns this energy when a complex has no connected structure at all
_SENTINEL = 999.0
#: returned (as +inf) for complexes without any structure
NO_COMPLEX = math.inf

_LOCK = threading.Lock()
_LOADED: tuple | None = None


def version() -> str:
    import RNA

    return str(getattr(RNA, "__version__", "unknown"))


#: loop enthalpy treatments (see "Loop enthalpies" above); the first is the default
LOOP_MODES = ("clipped", "shipped")

#: tables whose (free energy, enthalpy) entries are loops: their enthalpies are capped
_LOOP_TABLES = ("hairpin", "bulge", "internal", "int11", "int21", "int22")
_TOKEN = re.compile(r"/\*.*?\*/|\S+", re.S)


def _tokens(text: str, name: str) -> list:
    """``(start, end, token)`` of the values of one section (comments skipped)."""
    head = f"# {name}\n"
    i = text.find(head)
    if i < 0:  # pragma: no cover - would mean ViennaRNA changed its file format
        raise RuntimeError(f"cannot find the '# {name}' section in ViennaRNA's DNA parameter file")
    i += len(head)
    j = text.find("\n# ", i)
    j = len(text) if j < 0 else j
    return [(m.start() + i, m.end() + i, m.group()) for m in _TOKEN.finditer(text[i:j])
            if not m.group().startswith("/*")]


def _clip_loop_enthalpies(text: str) -> tuple[str, dict]:
    """Cap every loop enthalpy at ``min(dG37, 0)`` (values in dcal/mol); count the changes."""
    edits, changed = [], {}

    def cap(g_tok, h_tok, name):
        if g_tok[2] in ("INF", "DEF") or h_tok[2] in ("INF", "DEF"):
            return
        g, h = int(g_tok[2]), int(h_tok[2])
        new = min(h, g, 0)
        if new != h:
            edits.append((h_tok[0], h_tok[1], str(new)))
            changed[name] = changed.get(name, 0) + 1

    for name in _LOOP_TABLES:
        g, h = _tokens(text, name), _tokens(text, name + "_enthalpies")
        if len(g) != len(h):  # pragma: no cover - format change
            raise RuntimeError(f"ViennaRNA's '{name}' tables differ in size")
        for gt, ht in zip(g, h):
            cap(gt, ht, name)
    ml = _tokens(text, "ML_params")  # cu cu_dH cc cc_dH ci ci_dH
    for k in (0, 2, 4):
        cap(ml[k], ml[k + 1], "ML_params")
    for a, b, v in sorted(edits, reverse=True):
        text = text[:a] + v + text[b:]
    return text, changed


def loop_enthalpy_changes() -> dict:
    """How many entries of each loop table ``loops="clipped"`` changes (for reports and tests)."""
    import RNA

    return _clip_loop_enthalpies(RNA.parameter_set_dna_mathews2004)[1]


def _check_loops(loops: str) -> str:
    if loops not in LOOP_MODES:
        raise ValueError(f"unknown loop enthalpy treatment {loops!r}; choose one of "
                         f"{', '.join(LOOP_MODES)}")
    return loops


#: stack parameter sets (see "Stacks" above); the first is the default
STACK_MODES = ("vienna", "santalucia")

#: SantaLucia & Hicks (2004) Table 1, 1 M NaCl: "XY/X'Y'" (5'-XY-3' / 3'-X'Y'-5') ->
#: (dH kcal/mol, dS cal/(K mol), dG37 kcal/mol)
SANTALUCIA_2004_STACKS = {
    "AA/TT": (-7.6, -21.3, -1.00),
    "AT/TA": (-7.2, -20.4, -0.88),
    "TA/AT": (-7.2, -21.3, -0.58),
    "CA/GT": (-8.5, -22.7, -1.45),
    "GT/CA": (-8.4, -22.4, -1.44),
    "CT/GA": (-7.8, -21.0, -1.28),
    "GA/CT": (-8.2, -22.2, -1.30),
    "CG/GC": (-10.6, -27.2, -2.17),
    "GC/CG": (-9.8, -24.4, -2.24),
    "GG/CC": (-8.0, -19.9, -1.84),
}

#: the pair types of ViennaRNA's stack tables, in the file's row/column order
_STACK_PAIRS = ("CG", "GC", "GT", "TG", "AT", "TA", "NN")


def stack_entries(nn: str) -> list[tuple[int, int]]:
    """``(row, column)`` entries of ViennaRNA's 7x7 stack tables holding the stack ``nn``.

    ``nn`` is "XY/X'Y'" (5'-XY-3' paired with 3'-X'Y'-5'): row ``XX'``, column ``Y'Y``, and the
    same stack read from the other strand (the transposed entry; once when they coincide).
    """
    x, y, xp, yp = nn[0], nn[1], nn[3], nn[4]
    a, b = _STACK_PAIRS.index(x + xp), _STACK_PAIRS.index(yp + y)
    return [(a, b)] if a == b else [(a, b), (b, a)]


def _check_stacks(stacks: str) -> str:
    if stacks not in STACK_MODES:
        raise ValueError(f"unknown stack parameter set {stacks!r}; choose one of "
                         f"{', '.join(STACK_MODES)}")
    return stacks


def _santalucia_stacks(text: str) -> str:
    """The Watson-Crick entries of ``# stack`` / ``# stack_enthalpies`` set to SantaLucia's."""
    edits = []
    for table, k in (("stack", 2), ("stack_enthalpies", 0)):
        tokens = _tokens(text, table)
        if len(tokens) != 49:  # pragma: no cover - format change
            raise RuntimeError(f"ViennaRNA's '{table}' table is not 7x7")
        for nn, values in SANTALUCIA_2004_STACKS.items():
            for r, c in stack_entries(nn):
                start, end, _ = tokens[r * 7 + c]
                edits.append((start, end, str(round(values[k] * 100))))
    for a, b, v in sorted(set(edits), reverse=True):
        text = text[:a] + v + text[b:]
    return text


#: the free-energy tables (37 °C) a perturbation changes, and the symmetry of each: the
#: transposition of a table's axes that gives the same physical parameter read from the other
#: strand (checked against the shipped file by tests/test_perturb.py), so that both readings keep
#: one value; ``ML_params`` (cu, cc, ci), ``NINIO`` (m) and ``Misc`` (duplex initiation,
#: terminal A·T) name the free-energy positions among their tokens
PERTURBED_TABLES = {
    "stack": ((7, 7), (1, 0)),
    "mismatch_hairpin": ((7, 5, 5), None), "mismatch_internal": ((7, 5, 5), None),
    "mismatch_internal_1n": ((7, 5, 5), None), "mismatch_internal_23": ((7, 5, 5), None),
    "mismatch_multi": ((7, 5, 5), None), "mismatch_exterior": ((7, 5, 5), None),
    "dangle5": ((7, 5), None), "dangle3": ((7, 5), None),
    "int11": ((7, 7, 5, 5), (1, 0, 3, 2)), "int21": ((7, 7, 5, 5, 5), None),
    "int22": ((6, 6, 4, 4, 4, 4), (1, 0, 4, 5, 2, 3)),
    "hairpin": ((31,), None), "bulge": ((31,), None), "internal": ((31,), None),
}
_PERTURBED_TOKENS = {"ML_params": (0, 2, 4), "NINIO": (0,), "Misc": (0, 2)}


def check_perturb(perturb):
    """``None`` or ``(sigma kcal/mol, seed)`` as a hashable key; ``sigma`` 0 is no perturbation."""
    if perturb is None:
        return None
    try:
        sigma, seed = perturb
        sigma, seed = float(sigma), int(seed)
    except (TypeError, ValueError):
        raise ValueError(f"perturb must be (sigma, seed), got {perturb!r}") from None
    if not (0.0 <= sigma <= 5.0) or not math.isfinite(sigma) or not 0 <= seed < 2**32:
        raise ValueError(f"perturb sigma must be 0-5 kcal/mol and seed 0-2**32-1, got {perturb!r}")
    return None if sigma == 0.0 else (sigma, seed)


def _perturbed_free_energies(text: str, sigma: float, seed: int) -> str:
    """Every nearest-neighbor free energy at 37 °C plus seeded Gaussian noise of ``sigma``
    kcal/mol (a model of the parameters' uncertainty).

    The tables of :data:`PERTURBED_TABLES` (stacks, terminal mismatches, dangles, the 1x1, 1x2
    and 2x2 internal-loop tables, the hairpin, bulge and internal-loop initiations by size) and
    the multiloop, asymmetry, duplex-initiation and terminal A·T terms each get an independent
    draw; entries that stand for one parameter read from either strand get the same draw (its
    variance kept), impossible entries (``INF``) stay. Enthalpies are kept, so the perturbation
    moves each parameter's entropy with its free energy. The draws follow a fixed table order:
    the same ``(sigma, seed)`` is the same parameter set in every process.
    """
    rng = np.random.default_rng(int(seed))
    edits = []
    for name, (shape, sym) in PERTURBED_TABLES.items():
        tokens = _tokens(text, name)
        if len(tokens) != int(np.prod(shape)):  # pragma: no cover - format change
            raise RuntimeError(f"ViennaRNA's '{name}' table has {len(tokens)} entries, "
                               f"expected {int(np.prod(shape))}")
        noise = rng.standard_normal(shape)
        if sym is not None:
            mirror = noise.transpose(sym)
            idx = np.indices(shape)
            self_sym = np.all([idx[k] == idx[sym[k]] for k in range(len(shape))], axis=0)
            noise = np.where(self_sym, noise, (noise + mirror) / math.sqrt(2.0))
        for (start, end, tok), e in zip(tokens, noise.ravel()):
            if tok not in ("INF", "DEF"):
                edits.append((start, end, str(int(tok) + int(round(e * sigma * 100)))))
    for name, positions in _PERTURBED_TOKENS.items():
        tokens = _tokens(text, name)
        noise = rng.standard_normal(len(tokens))
        for i in positions:
            start, end, tok = tokens[i]
            if tok not in ("INF", "DEF"):
                edits.append((start, end, str(int(tok) + int(round(noise[i] * sigma * 100)))))
    parts, at = [], 0
    for a, b, v in sorted(edits):
        parts += [text[at:a], v]
        at = b
    return "".join(parts) + text[at:]


def _parameter_text(duplex_init, loops: str = "clipped", stacks: str = "vienna",
                    perturb=None) -> str:
    """The parameter file's text for one set (built once per process and set: ~0.6 s)."""
    return _parameter_text_cached(None if duplex_init is None else tuple(map(float, duplex_init)),
                                  _check_loops(loops), _check_stacks(stacks),
                                  check_perturb(perturb))


@functools.lru_cache(maxsize=8)
def _parameter_text_cached(duplex_init, loops: str, stacks: str, perturb=None) -> str:
    import RNA

    text = RNA.parameter_set_dna_mathews2004
    if _check_loops(loops) == "clipped":
        text = _clip_loop_enthalpies(text)[0]
    if _check_stacks(stacks) == "santalucia":
        text = _santalucia_stacks(text)
    if perturb is not None:   # after the stacks and the cap: their values are perturbed too
        text = _perturbed_free_energies(text, *perturb)
    if duplex_init is None:
        return text
    g37, dh = duplex_init
    pat = re.compile(r"(# Misc\n)(\s*)(-?\d+)(\s+)(-?\d+)")
    m = pat.search(text)
    if m is None:  # pragma: no cover - would mean ViennaRNA changed its file format
        raise RuntimeError("cannot find the '# Misc' section in ViennaRNA's DNA parameter file")
    repl = f"{m.group(1)}{m.group(2)}{round(g37 * 100):d}{m.group(4)}{round(dh * 100):d}"
    return text[: m.start()] + repl + text[m.end():]


def ensure_parameters(duplex_init=(1.96, 0.20), loops: str = "clipped",
                      stacks: str = "vienna", perturb=None) -> None:
    """Load the DNA parameter set into this process's ViennaRNA (once per process)."""
    global _LOADED
    perturb = check_perturb(perturb)
    key = ("dna_mathews2004", None if duplex_init is None else tuple(map(float, duplex_init)),
           _check_loops(loops), _check_stacks(stacks), perturb)
    if _LOADED == key:
        return
    import RNA

    name = "dna_mathews2004" if duplex_init is None else "dna_mathews2004+santalucia2004_init"
    if loops == "clipped":
        name += "+clipped_loop_enthalpies"
    if stacks == "santalucia":
        name += "+santalucia2004_stacks"
    if perturb is not None:
        name += f"+perturbed(sigma={perturb[0]:g},seed={perturb[1]})"
    RNA.params_load_from_string(_parameter_text(duplex_init, loops, stacks, perturb), name)
    _LOADED = key


def _model_details(temperature: float, sodium: float, dangles: int, gt_pairs: bool = True):
    import RNA

    md = RNA.md()
    md.temperature = float(temperature)
    md.dangles = int(dangles)
    md.noGU = 0 if gt_pairs else 1
    md.compute_bpp = 0
    md.noLP = 0
    if abs(sodium - 1.0) > 1e-12:
        md.salt = float(sodium) + 0.021
        md.helical_rise = RNA.MODEL_HELICAL_RISE_DNA
        md.backbone_length = RNA.MODEL_BACKBONE_LENGTH_DNA
        md.saltDPXInitFact = RNA.MODEL_SALT_DPXINIT_FACT_DNA
    return md


class _Context:
    """Model details for one set of conditions, built once per process and reused.

    Each new fold compound's parameters are checked against a fingerprint taken when primo loaded
    its set, so that another library loading a different ViennaRNA set into the same process is
    noticed and primo's set reloaded, instead of silently computing with the wrong energies.
    """

    def __init__(self, temperature, sodium, dangles, duplex_init, gt_pairs=True,
                 loops="clipped", stacks="vienna", perturb=None):
        self.key = (float(temperature), float(sodium), int(dangles), bool(gt_pairs),
                    None if duplex_init is None else tuple(map(float, duplex_init)),
                    _check_loops(loops), _check_stacks(stacks), check_perturb(perturb))
        self.duplex_init = duplex_init
        self.loops = loops
        self.stacks = stacks
        self.perturb = check_perturb(perturb)
        self.md = None
        self.fingerprint = None

    def fold_compound(self, seq):
        global _LOADED
        import RNA

        with _LOCK:
            ensure_parameters(self.duplex_init, self.loops, self.stacks, self.perturb)
            if self.md is None:
                self.md = _model_details(*self.key[:4])
            fc = RNA.fold_compound(seq, self.md)
            fp = _fingerprint(fc)
            if self.fingerprint is None:
                _LOADED = None  # first use in this process: make sure the set is really ours
                ensure_parameters(self.duplex_init, self.loops, self.stacks, self.perturb)
                fc = RNA.fold_compound(seq, self.md)
                self.fingerprint = _fingerprint(fc)
            elif fp != self.fingerprint:
                _LOADED = None
                ensure_parameters(self.duplex_init, self.loops, self.stacks, self.perturb)
                fc = RNA.fold_compound(seq, self.md)
                if _fingerprint(fc) != self.fingerprint:  # pragma: no cover - defensive
                    raise RuntimeError("ViennaRNA energy parameters changed under primo's feet")
            return fc


def _fingerprint(fc):
    p = fc.params
    return (p.DuplexInit, p.TerminalAU, p.MLclosing, tuple(p.stack[1][1:7]), tuple(p.hairpin[3:8]),
            tuple(p.bulge[1:3]))


_CONTEXTS: dict = {}


def _context(temperature, sodium, dangles, duplex_init, gt_pairs=True,
             loops="clipped", stacks="vienna", perturb=None) -> _Context:
    key = (float(temperature), float(sodium), int(dangles), bool(gt_pairs),
           None if duplex_init is None else tuple(map(float, duplex_init)), loops, stacks,
           check_perturb(perturb))
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        ctx = _CONTEXTS[key] = _Context(temperature, sodium, dangles, duplex_init, gt_pairs,
                                        loops, stacks, perturb)
    return ctx


def _pf(fc, dimer: bool) -> float:
    """Ensemble free energy; rescales Boltzmann factors by the MFE if the first try overflows."""
    out = fc.pf_dimer() if dimer else fc.pf()
    g = float(out[3] if dimer else out[1])
    if not math.isfinite(g):
        e = fc.mfe_dimer()[1] if dimer else fc.mfe()[1]
        fc.exp_params_rescale(e)
        out = fc.pf_dimer() if dimer else fc.pf()
        g = float(out[3] if dimer else out[1])
    if dimer and g >= _SENTINEL - 1e-6:
        return NO_COMPLEX
    return g


def monomer_energy(seq: str, *, temperature: float, sodium: float = 1.0, dangles: int = 2,
                   duplex_init=(1.96, 0.20), gt_pairs: bool = True,
                   loops: str = "clipped", stacks: str = "vienna", perturb=None) -> float:
    """Ensemble free energy (kcal/mol) of one strand."""
    ctx = _context(temperature, sodium, dangles, duplex_init, gt_pairs, loops, stacks, perturb)
    return _pf(ctx.fold_compound(seq), dimer=False)


def minimum_free_energy(seq: str, *, temperature: float, sodium: float = 1.0, dangles: int = 2,
                        duplex_init=(1.96, 0.20), gt_pairs: bool = True,
                        loops: str = "clipped", stacks: str = "vienna", perturb=None) -> float:
    """Free energy (kcal/mol) of one strand's most stable secondary structure (``fold_compound.mfe``),
    under the same parameters and conditions as :func:`monomer_energy` (which sums over every
    structure). ``0.0`` for a strand that forms no structure.

    >>> minimum_free_energy("A" * 20, temperature=37.0)
    0.0
    """
    ctx = _context(temperature, sodium, dangles, duplex_init, gt_pairs, loops, stacks, perturb)
    return float(ctx.fold_compound(seq).mfe()[1])


def dimer_energy(seq1: str, seq2: str, *, temperature: float, sodium: float = 1.0,
                 dangles: int = 2, duplex_init=(1.96, 0.20), gt_pairs: bool = True,
                 loops: str = "clipped", stacks: str = "vienna", perturb=None) -> float:
    """Free energy (kcal/mol, 1 M standard state) of the connected two-strand complex ensemble.

    ``inf`` when the strands cannot form any intermolecular pair.
    """
    ctx = _context(temperature, sodium, dangles, duplex_init, gt_pairs, loops, stacks, perturb)
    return _pf(ctx.fold_compound(f"{seq1}&{seq2}"), dimer=True)


def strand_energies(seqs, **conditions) -> np.ndarray:
    """``(n, 2)`` array: monomer and homodimer ensemble free energies of each strand."""
    out = np.empty((len(seqs), 2), dtype=np.float64)
    for i, s in enumerate(seqs):
        out[i, 0] = monomer_energy(s, **conditions)
        out[i, 1] = dimer_energy(s, s, **conditions)
    return out


def pair_energies(pairs, **conditions) -> np.ndarray:
    """``(n,)`` array: heterodimer ensemble free energy of each ``(strand_a, strand_b)`` pair."""
    out = np.empty(len(pairs), dtype=np.float64)
    for i, (a, b) in enumerate(pairs):
        out[i] = dimer_energy(a, b, **conditions)
    return out
