#!/usr/bin/env python
"""How many simulated NextSeq reads ``primo analyze`` assigns to the right document.

Reads come from an independent simulator, ART (``art_illumina``, Debian package
art-nextgen-simulation-tools), not from primo's own error model:

1. a random pool of ``--docs`` documents (random 80-nt feature regions, random document indices in
   the published 1.6 M range, the published layout and barcode scheme), optionally inside a larger
   pool of ``--decoys`` documents that are never sequenced (they can attract miscorrections);
2. amplicons = 25 random nt + the 165-nt oligo, reverse-complemented with probability 1/2, each
   document present in a number of copies drawn from a skewed (log-normal) abundance;
3. ``art_illumina -amp`` (single-end, or ``--paired`` for both ends) with a 150-nt profile (HS25)
   that covers the barcode in both orientations; ``--qshift`` lowers ART's quality scores (and so
   raises its substitution rate, x10^(-qshift/10)); ``--indel`` sets its insertion and deletion
   rates per base;
4. every read is placed by :class:`primo.reads.ReadAssigner` (the engine of
   ``primo analyze``) and by a reimplementation of the published pipeline (exact IP, forward
   strand only, exact codebook, ``reedsolo``); the counts of :func:`count_reads` over the FASTQ
   files are checked against the per-read assignments;
5. prints right / wrong / unassigned shares for both.

``--write-testdata DIR`` also writes a small set (pool ``database_seqs.csv.gz``, ``reads_R1/R2``
FASTQ.gz, ``truth.csv``) as used by ``tests/test_analyze_reads.py``.

Example::

    python experiments/analyze_accuracy.py --docs 20000 --decoys 1600000 --paired
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


from primo import constants as C  # noqa: E402
from primo.reads import ReadAssigner, count_reads, pair_inputs  # noqa: E402,F401
from primo.barcodes import BarcodeScheme  # noqa: E402

ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
COMP = np.zeros(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN"):
    COMP[_a] = _b


class MemoryPool:
    """The parts of a pool that count_reads needs."""

    def __init__(self, image_ids, indices):
        self.image_ids = np.asarray(image_ids)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.scheme = BarcodeScheme()
        self.layout = None
        self.path = "simulated pool"


def make_pool(n_docs, n_decoys, rng):
    """Sequenced documents (rows 0..n_docs-1) inside a pool of n_docs + n_decoys documents."""
    n = n_docs + n_decoys
    space = max(1_600_000, 2 * n)
    idx = rng.choice(space, n, replace=False).astype(np.int64)
    ids = np.array([f"{i:016x}" for i in rng.integers(0, 2**62, n)])
    bc = np.frombuffer(BarcodeScheme().encode_bytes(idx[:n_docs]).tobytes(), np.uint8)
    bc = bc.reshape(n_docs, 30)
    feat = ACGT[rng.integers(0, 4, (n_docs, C.FEATURE_LENGTH))]

    def const(s):
        return np.broadcast_to(np.frombuffer(s.encode(), np.uint8), (n_docs, len(s)))

    oligos = np.concatenate([const(C.FP), bc, const(C.IP), feat, const(C.RP)], axis=1)
    return ids, idx, np.ascontiguousarray(oligos)


def write_amplicons(path, oligos, copies, rng):
    """FASTA of amplicons (25N + oligo, random orientation); returns the doc row of each."""
    doc = np.repeat(np.arange(len(oligos)), copies)
    rng.shuffle(doc)
    m = len(doc)
    amp = np.concatenate([ACGT[rng.integers(0, 4, (m, C.READ_RANDOM_PREFIX))], oligos[doc]],
                         axis=1)
    rev = rng.random(m) < 0.5
    amp[rev] = COMP[amp[rev][:, ::-1]]
    with open(path, "wb") as fh:
        for i in range(m):
            fh.write(b">a%d\n" % i + amp[i].tobytes() + b"\n")
    return doc


def run_art(fasta, prefix, paired, read_length, qshift, indel, seed, profile="HS25"):
    exe = shutil.which("art_illumina")
    if exe is None:
        sys.exit("art_illumina is not installed (Debian: apt-get install art-nextgen-simulation-tools)")
    cmd = [exe, "-ss", profile, "-amp", "-i", str(fasta), "-l", str(read_length), "-c", "1",
           "-o", str(prefix), "-rs", str(seed), "-na", "-q", "-qs", str(qshift),
           "-qs2", str(qshift), "-ir", str(indel), "-dr", str(indel), "-ir2", str(indel),
           "-dr2", str(indel)]
    if paired:
        cmd.insert(3, "-p")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = [Path(f"{prefix}1.fq"), Path(f"{prefix}2.fq")] if paired else [Path(f"{prefix}.fq")]
    return files


def read_fastq(path):
    """(amplicon numbers, sequences, qualities) of an ART FASTQ (names a<amp>-<n>[/1])."""
    import dnaio

    amps, seqs, quals = [], [], []
    with dnaio.open(path) as r:
        for rec in r:
            amps.append(int(rec.name.split("-")[0][1:]))
            seqs.append(rec.sequence)
            quals.append(rec.qualities)
    return np.array(amps, dtype=np.int64), seqs, quals


# ------------------------------------------------------------------------------------------------
# the published pipeline, reimplemented: exact IP on the forward strand, exact codebook, reedsolo
# ------------------------------------------------------------------------------------------------
class PublishedDecoder:
    """One read at a time, as the published analysis did it."""

    def __init__(self, pool_indices, scheme=None):
        import reedsolo

        self.scheme = scheme or BarcodeScheme()
        s = self.scheme
        self.rs = reedsolo.RSCodec(nsym=2, nsize=6, c_exp=6, prim=s.prim, generator=s.generator,
                                   fcr=s.fcr)
        self.words = {w: i for i, w in enumerate(s.codebook)}
        idx = np.asarray(pool_indices, dtype=np.int64)
        self.row_of_id = dict(zip(s.ids_of(idx).tolist(), range(len(idx))))
        self.err = reedsolo.ReedSolomonError

    def row(self, seq: str) -> int:
        p = seq.find(C.IP)
        if p < 30:
            return -1
        bc = seq[p - 30:p]
        try:
            sym = [self.words[bc[i:i + 5]] for i in range(0, 30, 5)]
        except KeyError:
            return -1
        try:
            dec = self.rs.decode(bytearray(sym))[0]
        except self.err:
            return -1
        i = dec[0] | dec[1] << 6 | dec[2] << 12 | dec[3] << 18
        return self.row_of_id.get(i, -1)


def shares(pred, truth):
    n = len(truth)
    right = int((pred == truth).sum())
    wrong = int(((pred >= 0) & (pred != truth)).sum())
    return {"n": n, "right": right / n, "wrong": wrong / n, "unassigned": 1 - (right + wrong) / n}


def combine_pairs(p1, p2):
    ok1, ok2 = p1 >= 0, p2 >= 0
    out = np.where(ok1, p1, p2)
    out[ok1 & ok2 & (p1 != p2)] = -1
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=20000, help="sequenced documents")
    ap.add_argument("--decoys", type=int, default=0,
                    help="extra pool documents never sequenced (e.g. 1580000 for a 1.6 M pool)")
    ap.add_argument("--reads-per-doc", type=float, default=3.0, help="mean amplicon copies")
    ap.add_argument("--skew", type=float, default=1.0, help="log-normal sigma of abundance")
    ap.add_argument("--paired", action="store_true", help="paired-end ART reads")
    ap.add_argument("--read-length", type=int, default=150)
    ap.add_argument("--qshift", type=float, default=-6.0,
                    help="ART quality shift (negative: more substitutions)")
    ap.add_argument("--indel", type=float, default=0.0003, help="ART insertion and deletion rate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--processes", type=int, default=None)
    ap.add_argument("--workdir", default=None, help="keep files here (default: a temp dir)")
    ap.add_argument("--write-testdata", default=None, metavar="DIR",
                    help="write pool, reads and truth for the tests into DIR")
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="primo-accuracy-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    ids, idx, oligos = make_pool(args.docs, args.decoys, rng)
    w = rng.lognormal(0, args.skew, args.docs)
    copies = rng.poisson(w / w.mean() * args.reads_per_doc)
    doc_of_amp = write_amplicons(work / "amplicons.fa", oligos, copies, rng)
    files = run_art(work / "amplicons.fa", work / ("reads_R" if args.paired else "reads"),
                    args.paired, args.read_length, args.qshift, args.indel, args.seed)
    print(f"pool: {len(idx):,} documents ({args.docs:,} sequenced, {args.decoys:,} decoys); "
          f"{len(doc_of_amp):,} amplicons; ART HS25 {args.read_length} nt, qshift {args.qshift}, "
          f"indel rate {args.indel}{', paired' if args.paired else ''} ({time.time() - t0:.1f} s)")

    ra = ReadAssigner(idx)
    pub = PublishedDecoder(idx)
    preds, pubs, truth = [], [], None
    t_primo = t_pub = 0.0
    n_reads = 0
    for f in files:
        amps, seqs, quals = read_fastq(f)
        truth = doc_of_amp[amps]
        t = time.perf_counter()
        a = ra.assign(seqs)
        t_primo += time.perf_counter() - t
        t = time.perf_counter()
        pp = np.array([pub.row(s) for s in seqs], dtype=np.int64)
        t_pub += time.perf_counter() - t
        preds.append(a.position)
        pubs.append(pp)
        n_reads += len(seqs)
        r = shares(a.position, truth)
        rp = shares(pp, truth)
        print(f"  {f.name}: {len(seqs):,} reads; primo right {100 * r['right']:.2f}% wrong "
              f"{100 * r['wrong']:.3f}% unassigned {100 * r['unassigned']:.2f}% | published "
              f"right {100 * rp['right']:.2f}% wrong {100 * rp['wrong']:.3f}%")
        print("    primo reasons:", {k: v for k, v in a.summary()["reasons"].items() if v},
              "how:", {k: v for k, v in a.summary()["how"].items() if v})
    if args.paired:
        pred, pp = combine_pairs(*preds), combine_pairs(*pubs)
        unit = "fragments"
    else:
        pred, pp = preds[0], pubs[0]
        unit = "reads"
    r, rp = shares(pred, truth), shares(pp, truth)
    # the file-level counter must agree with the per-read engine
    pool = MemoryPool(ids, idx)
    from primo.parallel import get_mapper

    with get_mapper(args.processes) as m:
        rc = count_reads(pool, [str(f) for f in files], paired=args.paired, mapper=m,
                         show_progress=False)
    expect = np.bincount(pred[pred >= 0], minlength=len(idx))
    consistent = bool((expect == rc.counts).all())
    print(f"\n{unit}: {r['n']:,}")
    print(f"{'method':<28}{'right':>10}{'wrong':>10}{'unassigned':>12}{'reads/s':>12}")
    print(f"{'primo analyze':<28}{100 * r['right']:>9.2f}%{100 * r['wrong']:>9.3f}%"
          f"{100 * r['unassigned']:>11.2f}%{n_reads / t_primo:>12,.0f}")
    print(f"{'published (reimplemented)':<28}{100 * rp['right']:>9.2f}%{100 * rp['wrong']:>9.3f}%"
          f"{100 * rp['unassigned']:>11.2f}%{n_reads / t_pub:>12,.0f}")
    print(f"count_reads over the FASTQ files agrees with the per-read assignment: {consistent}")
    target = r["right"] >= 0.97 and r["wrong"] <= 0.001
    print(f"target (>= 97% right, <= 0.1% wrong): {'met' if target else 'NOT met'}")
    if args.write_testdata:
        write_testdata(Path(args.write_testdata), ids[:args.docs], oligos, files, doc_of_amp)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if (target and consistent) else 1


def write_testdata(d: Path, ids, oligos, files, doc_of_amp):
    """Pool (published layout), gzip reads and the truth table, for the tests."""
    d.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(d / "database_seqs.csv.gz", "wb", compresslevel=9, mtime=0) as fh:
        fh.write(b"ImageID,Sequence\n")
        for i, o in zip(ids.tolist(), oligos):
            fh.write(i.encode() + b"," + o.tobytes() + b"\n")
    names = ["reads_R1.fastq.gz", "reads_R2.fastq.gz"] if len(files) == 2 else ["reads.fastq.gz"]
    for f, name in zip(files, names):
        with open(f, "rb") as src, gzip.GzipFile(d / name, "wb", compresslevel=9, mtime=0) as dst:
            shutil.copyfileobj(src, dst)
    amps, _, _ = read_fastq(files[0])
    with open(d / "truth.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Read", "ImageID"])
        for a in amps.tolist():
            w.writerow([f"a{a}", ids[doc_of_amp[a]]])
    print(f"test data written to {d}")


if __name__ == "__main__":
    sys.exit(main())
