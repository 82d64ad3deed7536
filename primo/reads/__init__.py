"""Sequencing reads -> per-document read counts (``primo analyze``, first half).

Modules: :mod:`~primo.reads.structure` (the read structure, outcome codes),
:mod:`~primo.reads.assign` (:class:`ReadAssigner`), :mod:`~primo.reads.fastq` (FASTQ input),
:mod:`~primo.reads.kernel` (the compiled common case, ``_fastreads.c``), :mod:`~primo.reads.ring`
and :mod:`~primo.reads.workers` (shared-memory chunks, what a worker does),
:mod:`~primo.reads.counts` (:class:`ReadCounts`), :mod:`~primo.reads.counting`
(:func:`count_reads`).

Read structure
--------------
After the similarity search the captured strands are amplified with a forward primer carrying 25
random nt (for NextSeq base diversity) and ligated to sequencing adapters without regard to
orientation, so a read holds::

    forward:  25 random nt | FP (18) | barcode (30) | IP (19) | feature (80) | RP (18) | adapter...
    reverse:  RP* (18) | feature* (80) | IP* (19) | barcode* (30) | FP* (18) | 25 random nt* | ...

(``*`` = reverse complement), truncated to the read length, with sequencing errors, Ns and possibly
adapter read-through. A 150-nt read covers the barcode in both orientations (the reverse barcode
ends at nt 147).

How a read is placed
--------------------
1. **Find IP** (:class:`ReadStructure` sets the numbers), cheapest test first, all vectorised over a
   chunk of reads:

   a. IP exact at its expected offset: forward at ``prefix + len(FP) + barcode`` (73), reverse (IP*)
      at ``len(RP) + feature`` (98);
   b. otherwise IP with at most ``max_ip_mismatches`` (2) mismatches within ``max_shift`` (4) nt of
      the expected offset (indels in the random prefix or the oligo shift it);
   c. otherwise anywhere in the read: an exact IP is accepted; an IP with mismatches only with
      flanking context, i.e. the last ``flank_length`` (8) nt of FP, with at most 1 mismatch, right
      5' of the barcode (forward) or right 3' of the reverse barcode (reverse).

   d. otherwise (``fp_anchor``) FP within ``max_shift`` of its offset, with at most
      ``max_ip_mismatches``: the barcode is read 3' of it. This places forward reads too short
      to hold IP (it ends at nt 92; 75-cycle runs) -- their barcode ends at nt 73.

   Both orientations are tried; each orientation contributes at most one candidate (the best
   match: fewest mismatches, then closest to the expected offset).
2. **Cut the barcode**: the ``barcode_length`` nt 5' of IP (forward), or the reverse complement of
   the nt 3' of IP* (reverse). Positions beyond the end of the read become N (erasures) if at most
   ``max_missing`` (5) nt are missing, else the read is ``barcode_truncated``.
3. **Decode** all barcodes of a chunk in one call to :class:`primo.barcodes.decode.BarcodeDecoder`
   restricted to the pool's documents: Reed-Solomon error and erasure correction (a 5-mer outside
   the codebook or with N is an erasure), then the decoder's pool rule (the unique closest pool
   barcode), accepted only if it differs from the read's barcode in at most
   ``max_barcode_mismatches`` (3) called bases -- a miscorrection differs in ~4 bases per wrong
   symbol.
4. **Rescue indels** (``rescue_indels``) of barcodes that did not decode: a 29- or 31-nt barcode
   between FP and IP. For each of the 6 symbols, the symbols 5' of it are read in the shifted
   frame, those 3' of it in the IP frame, and the symbol itself is erased (12 variants, each
   keeping one parity check; the other symbols must then match exactly). A variant counts only if
   the erased stretch is the decoded 5-mer with one base deleted or inserted.

A read is assigned when its candidates decode to exactly one pool document; two different documents
make it ``ambiguous``. Base qualities are not used: the decoder's pool rule already places what
erasing the lowest-quality symbols would (on ART and synthetic reads such a rescue placed no
further read). So a quality line is checked only for its length (that of the sequence): characters
outside Phred+33, such as spaces, are accepted (checking every byte would slow the common path for
no effect on the counts).

Reasons a read is not counted: ``no_ip``, ``barcode_truncated``, ``uncorrectable``, ``not_in_pool``
(a valid barcode of a document that is not in the pool), ``ambiguous``; for paired-end fragments
also ``conflict`` (the mates decode to different documents).

Inputs
------
FASTQ (or FASTA) files, plain or gzip/bz2/xz (detected by content), any number of them (lanes are
simply more files). Paired-end files are given R1 then R2 (``paired=True``), or are found by name
(``paired=None``): a file whose name contains ``_R1`` (followed by ``_`` or ``.``) is paired with the
file of the same name with ``_R2`` if that is among the inputs; all other files are single-end. A
fragment is counted once: the mate that decodes gives the document; if both decode to different
documents the fragment is a ``conflict`` and is not counted. Mates must be in the same order in both
files (the first and last record names of every chunk are checked).

How the work is spread
----------------------
Two ways, giving identical results:

* **whole inputs per worker** (the default with local processes when there are at least as many
  inputs -- lanes, mate pairs -- as workers; ``by_file``): each worker opens an input, decompresses
  it itself (ISA-L) and counts it in chunks, so decompression runs on every core and no read
  passes through the main process;
* **chunks** (one input, or a Dask cluster): the main process decompresses (ISA-L in one
  background thread per input; several inputs are read at once, their chunks taken in turn) and
  cuts chunks of whole records of about ``chunksize`` bytes (16 MiB): single-end FASTQ by
  :func:`primo.reads.fastq._fastq_chunks`, which finds record starts without counting every line, paired and FASTA
  files by :func:`dnaio.read_paired_chunks` / :func:`dnaio.read_chunks`. Chunks reach local worker
  processes through a ring of shared-memory files (:class:`primo.reads.ring._Ring`) rather than pickles, and a Dask
  cluster as bytes.

Within a chunk, the common case runs in compiled code (``primo/reads/_fastreads.c``, built at
install time when a C compiler is present; ``PRIMO_NO_KERNEL=1`` switches it off): FASTQ record
offsets, IP at or near its offset (stages a and b) in one orientation, and the barcode decoded by
plain Reed-Solomon or the decoder's pool rule. Every read it does not decide (IP elsewhere or in
both orientations, reads too short, barcodes that need the indel rescue or do not decode) goes
through the vectorised numpy implementation, which covers every case -- whole-input workers
gather such reads over chunks and place them in batches. Tests check that both give the same
answer for every read. Malformed records are reported with dnaio's message, the file, the line and
the record. Memory is bounded by the pool and the chunk size, not by the number of reads.

Outputs (:meth:`ReadCounts.write`)
----------------------------------
``counts.csv.gz``
    ``ImageID,Count``: every pool document in pool order, zeros included (the layout of the
    published ``sequencing/decoded`` files; no comment lines).
``stats.json``
    reads per file, oligo found forward / reverse, how IP was found, barcodes exact / corrected /
    rescued, reads not counted by reason, paired-end agreement and conflicts, excluded documents and
    their counts, throughput, and :func:`primo.io.provenance`.
"""

from .assign import Assignment, ReadAssigner
from .counting import DEFAULT_CHUNKSIZE, MIN_YIELD, count_reads
from .counts import ReadCounts, align_counts, apply_exclusions
from .fastq import pair_inputs
from .structure import HOW, IP_STAGES, REASONS, ReadStructure

__all__ = [
    "ReadStructure", "ReadAssigner", "Assignment", "ReadCounts", "count_reads", "pair_inputs",
    "align_counts", "apply_exclusions", "REASONS", "HOW", "IP_STAGES", "DEFAULT_CHUNKSIZE",
    "MIN_YIELD",
]
