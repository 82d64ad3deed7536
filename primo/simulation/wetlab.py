"""The wet-lab step in silico: hybridization yields -> captured strands -> read counts -> reads.

A model of the laboratory workflow of paper 001 (Fig. S5), step by step, each step a documented
random process whose parameters are recorded with the results:

1. **Synthesis** (Twist pool): the abundance of each oligo is log-normal around the mean,
   ``sigma_synthesis`` = 0.42 by default, so that 90% of oligos lie within 2x of the mean (Twist's
   stated uniformity: "> 90% of oligos within 2x of the mean").
2. **Enrichment PCR, linear amplification with FP and IP**: per-oligo amplification bias, log-normal
   with ``sigma_pcr`` (0.15 by default) per PCR stage (``pcr_stages_before`` = 2).
3. **Hybridization and bead capture**: the captured amount of document *i* is
   ``abundance_i * (capture_efficiency * yield_i + background)`` where ``yield_i`` is the simulated
   duplex yield of the probe with the document's feature region (fraction of the target in the
   target·query duplex at equilibrium) and ``background`` the fraction of unbound strands carried over
   by the beads non-specifically (2e-4 by default: washes remove most of it, but never all; the paper's
   read counts show every document can appear).
4. **USER release and PCR enrichment** (FP/RP, then FP-25N/RP): more amplification bias
   (``pcr_stages_after`` = 2 stages of ``sigma_pcr``).
5. **Sequencing**: ``depth`` reads drawn by multinomial sampling from the final abundances.

:func:`simulate_counts` does steps 1–5 for yields of every document (vectorised; 1.6 M documents take
about a second). Steps 1–2 happen once per pool, before the pool is split between queries:
:func:`pool_abundance` draws them, and passing its result as ``abundance`` makes several queries
share one synthesized pool, as in the laboratory.

**Input library.** Sequencing an aliquot of that amplified pool *before* hybridization (the input,
or "pre-selection", library of selection experiments) measures each document's abundance;
:func:`simulate_input_counts` simulates it (library PCR, ``pcr_stages_after`` stages, then
multinomial sampling) and :func:`primo.evaluation.recall.enrichment_scores` divides it out of a
query's read counts, so that ranking by enrichment removes the synthesis and enrichment-PCR spread
(but not the per-query PCR after capture, nor the counting noise of either library). One input
library serves every query of the pool.

:func:`write_reads` turns counts into NextSeq-like FASTQ records in the read structure
``primo analyze`` expects: 25 random nt + the 165-nt oligo, forward or reverse-complemented
with equal probability, truncated to ``read_length``, with substitution errors whose rate grows
along the read (``error_start`` -> ``error_end``), Ns at a low rate, and binned NextSeq qualities
consistent with the errors.

All randomness comes from one ``numpy.random.Generator`` seeded by the caller.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..constants import READ_RANDOM_PREFIX
from ..settings import check_settings, setting

__all__ = ["WetLabModel", "pool_abundance", "simulate_counts", "simulate_input_counts",
           "write_reads", "reads_from_counts"]


@dataclasses.dataclass(frozen=True)
class WetLabModel:
    """Parameters of the in-silico wet-lab step (see the module docstring)."""

    sigma_synthesis: float = setting(0.42, "Log-normal spread of oligo abundance after "
                                     "synthesis.", lo=0, hi=10)
    sigma_pcr: float = setting(0.15, "Log-normal amplification bias per PCR stage.", lo=0, hi=10)
    pcr_stages_before: int = setting(2, "PCR stages before the hybridization.", lo=0, hi=100,
                                     cli=False)
    pcr_stages_after: int = setting(2, "PCR stages after the capture.", lo=0, hi=100, cli=False)
    capture_efficiency: float = setting(0.8, "Fraction of the probe-bound strands the beads "
                                        "pull out.", lo=0, hi=1, lo_open=True)
    background: float = setting(2e-4, "Fraction of unbound strands the beads carry over.", lo=0,
                                hi=1)
    depth: int | None = setting(None, "Sequencing reads per query.", lo=1, hi=10**12,
                                optional=True,
                                default_text="reads-per-document x documents")
    reads_per_document: float = setting(10.0, "Mean sequencing reads per document (sets the "
                                        "depth's default).", lo=0, hi=1e9, lo_open=True)
    read_length: int = setting(150, "Length of the simulated reads written with --reads.", lo=50,
                               hi=10_000)
    error_start: float = setting(0.001, "Substitution rate at the first sequencing cycle.",
                                 lo=0, hi=1, cli=False)
    error_end: float = setting(0.01, "Substitution rate at the last sequencing cycle.", lo=0,
                               hi=1, cli=False)
    n_rate: float = setting(0.0005, "Rate of N calls.", lo=0, hi=1, cli=False)

    def __post_init__(self):
        check_settings(self)

    def reads_for(self, n_documents: int) -> int:
        if self.depth is not None:
            return int(self.depth)
        return int(round(self.reads_per_document * n_documents))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def pool_abundance(n: int, model: WetLabModel = WetLabModel(), rng=None) -> np.ndarray:
    """Relative abundance of each of ``n`` documents in the amplified pool (steps 1–2).

    Log-normal synthesis spread times ``pcr_stages_before`` stages of PCR bias; float64, > 0.
    """
    rng = np.random.default_rng(rng)
    log_a = rng.normal(0.0, model.sigma_synthesis, int(n))
    for _ in range(model.pcr_stages_before):
        log_a += rng.normal(0.0, model.sigma_pcr, int(n))
    return np.exp(log_a)


def _sequence(abundance, depth: int, model: WetLabModel, rng) -> np.ndarray:
    """Library PCR (``pcr_stages_after`` stages of bias), then ``depth`` reads, multinomial."""
    log_c = np.log(np.maximum(abundance, 1e-300))
    for _ in range(model.pcr_stages_after):
        log_c += rng.normal(0.0, model.sigma_pcr, log_c.size)
    log_c -= log_c.max()
    p = np.exp(log_c)
    p /= p.sum()
    return rng.multinomial(int(depth), p).astype(np.int64), p


def simulate_counts(yields, model: WetLabModel = WetLabModel(), rng=None,
                    return_abundance: bool = False, abundance=None):
    """Read counts per document from duplex yields (array of N values in [0, 1]).

    ``abundance``: the pool's document abundances (:func:`pool_abundance`); drawn here when not
    given (a pool of its own for this query). Returns an int64 array of N counts (and the final
    relative abundance if requested).
    """
    rng = np.random.default_rng(rng)
    y = np.clip(np.asarray(yields, dtype=np.float64), 0.0, 1.0)
    n = y.size
    if n == 0:
        return (np.zeros(0, np.int64), np.zeros(0)) if return_abundance else np.zeros(0, np.int64)
    # 1-2: synthesis and PCR bias
    if abundance is None:
        abundance = pool_abundance(n, model, rng)
    else:
        abundance = np.asarray(abundance, dtype=np.float64)
        if abundance.shape != y.shape:
            raise ValueError(f"{abundance.size} abundances for {n} documents")
    # 3: capture
    captured = abundance * (model.capture_efficiency * y + model.background)
    # 4-5: PCR after release, sequencing
    counts, p = _sequence(captured, model.reads_for(n), model, rng)
    return (counts, p) if return_abundance else counts


def simulate_input_counts(abundance, model: WetLabModel = WetLabModel(), rng=None, *,
                          reads_per_document: float = 10.0) -> np.ndarray:
    """Read counts of the input library: the amplified pool sequenced without hybridization.

    ``abundance`` from :func:`pool_abundance` (the same pool the queries capture from); the
    library goes through the same sequencing PCR as a capture (``pcr_stages_after``) and is
    sequenced to ``reads_per_document`` reads per document on average.
    """
    rng = np.random.default_rng(rng)
    a = np.asarray(abundance, dtype=np.float64)
    if a.size == 0:
        return np.zeros(0, np.int64)
    if not reads_per_document > 0:
        raise ValueError("reads_per_document must be > 0")
    return _sequence(a, int(round(reads_per_document * a.size)), model, rng)[0]


# NextSeq 2-colour chemistry reports binned qualities
_QBINS = np.array([14, 21, 27, 32, 36])


def reads_from_counts(counts, oligos, model: WetLabModel = WetLabModel(), rng=None,
                      chunk: int = 200_000):
    """Yield chunks of (names, sequences, qualities, doc_index, reverse) for the given counts.

    ``oligos`` is an array/list of full oligo sequences (one per document, same order as counts).
    Reads are emitted in a random order; each chunk holds at most ``chunk`` reads.
    """
    rng = np.random.default_rng(rng)
    counts = np.asarray(counts, dtype=np.int64)
    order = np.repeat(np.arange(counts.size), counts)
    rng.shuffle(order)
    lut = np.frombuffer(b"ACGT", dtype=np.uint8)
    comp = np.zeros(256, dtype=np.uint8)
    for a, b in zip(b"ACGTN", b"TGCAN"):
        comp[a] = b
    olig = np.asarray(oligos)
    L = model.read_length
    pos = np.arange(L)
    err_rate = model.error_start + (model.error_end - model.error_start) * pos / max(L - 1, 1)
    serial = 0
    for start in range(0, order.size, chunk):
        docs = order[start:start + chunk]
        m = docs.size
        seqs = np.frombuffer("".join(olig[docs]).encode("ascii"), dtype=np.uint8).reshape(m, -1)
        prefix = lut[rng.integers(0, 4, (m, READ_RANDOM_PREFIX))]
        amp = np.concatenate([prefix, seqs], axis=1)          # 25N + oligo
        rev = rng.random(m) < 0.5
        amp[rev] = comp[amp[rev][:, ::-1]]                     # reverse complement
        width = amp.shape[1]
        if width < L:
            # adapter read-through beyond the fragment: pad with the adapter start
            adapter = np.frombuffer(b"AGATCGGAAGAGC" * (1 + L // 13), dtype=np.uint8)[: L - width]
            amp = np.concatenate([amp, np.broadcast_to(adapter, (m, L - width))], axis=1)
        read = amp[:, :L].copy()
        # substitutions
        is_err = rng.random((m, L)) < err_rate
        if is_err.any():
            shift = rng.integers(1, 4, int(is_err.sum()))
            codes = np.searchsorted(lut, read[is_err])
            read[is_err] = lut[(codes + shift) % 4]
        is_n = rng.random((m, L)) < model.n_rate
        read[is_n] = ord("N")
        # qualities: errors get low bins, others high bins decreasing along the read
        hi = np.where(rng.random((m, L)) < 0.85 - 0.25 * pos / L, 4, 3)
        lo = rng.integers(0, 3, (m, L))
        q = _QBINS[np.where(is_err, lo, hi)]
        q[is_n] = 2
        qual = (q + 33).astype(np.uint8)
        names = [f"sim{serial + i} doc={int(d)} {'rev' if r else 'fwd'}"
                 for i, (d, r) in enumerate(zip(docs, rev))]
        serial += m
        yield (names, [r.tobytes().decode("ascii") for r in read],
               [r.tobytes().decode("ascii") for r in qual], docs, rev)


def write_reads(path, counts, oligos, model: WetLabModel = WetLabModel(), rng=None) -> int:
    """Write reads for ``counts`` to a FASTQ file (gzip if ``path`` ends in .gz); returns the number.

    The file is written under a temporary name and renamed when complete.
    """
    import dnaio

    from ..io import atomic_file

    n = 0
    with atomic_file(path, suffix=".fastq.gz" if str(path).endswith(".gz") else ".fastq") as tmp:
        with dnaio.open(tmp, mode="w", fileformat="fastq", compression_level=1) as out:
            for names, seqs, quals, _, _ in reads_from_counts(counts, oligos, model, rng):
                for name, s, q in zip(names, seqs, quals):
                    out.write(dnaio.SequenceRecord(name, s, q))
                n += len(names)
    return n
