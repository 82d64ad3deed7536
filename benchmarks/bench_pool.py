#!/usr/bin/env python
"""Pool writing / reading / QC at the scale of the published pool (1.6 M oligos).

Builds a pool of ``--n`` documents with random 80-nt features (streamed in chunks of 50,000 through
:class:`primo.oligos.PoolWriter`), then reads it back with :func:`primo.oligos.read_pool` in a fresh
process (wall time and peak resident memory), and re-runs QC (:func:`primo.oligos.check_pool`).

The peer, on the first ``--peer-n`` rows of the same files, is the straightforward per-row Python a
user would write without primo: for writing, ``str`` concatenation per oligo with each barcode
encoded by ``reedsolo``, written with ``csv`` to the same three files (no QC); for reading, ``csv`` + slicing + a codebook dict + ``reedsolo`` to check each
barcode + the inverse permutation. Rates are oligos per second; the ratio is primo / peer.

    python benchmarks/bench_pool.py                 # 1.6 M documents, peer on 100,000
    python benchmarks/bench_pool.py --n 200000      # quicker
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build(out, n, seed=0, chunk=50_000, qc="warn"):
    from primo.oligos import PoolWriter

    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", np.uint8)
    t = time.perf_counter()
    with PoolWriter(out, qc=qc) as w:
        for a in range(0, n, chunk):
            m = min(chunk, n - a)
            feats = letters[rng.integers(0, 4, (m, 80))].view("S80").ravel()
            w.add([f"img{i:08d}" for i in range(a, a + m)], [f.decode() for f in feats])
    return time.perf_counter() - t, w.result


def peer_build(n, seed=1):
    import reedsolo

    from primo import constants as C
    from primo.barcodes import default_codebook

    rs = reedsolo.RSCodec(nsym=2, nsize=6, c_exp=6, prim=0x61, generator=3, fcr=1)
    cb = default_codebook()
    perm = np.random.RandomState(42).permutation(2**24 - 1)
    rng = np.random.default_rng(seed)
    feats = ["".join(r) for r in np.array(list("ACGT"))[rng.integers(0, 4, (n, 80))]]
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as d, \
            gzip.open(Path(d) / "db.csv.gz", "wt", compresslevel=3) as f1, \
            open(Path(d) / "twist.csv", "w") as f2, \
            gzip.open(Path(d) / "order.csv.gz", "wt", compresslevel=3) as f3:
        w1, w2, w3 = csv.writer(f1), csv.writer(f2), csv.writer(f3)
        w1.writerow(["ImageID", "Sequence"])
        w2.writerow(["name", "sequence"])
        w3.writerow(["index", "ImageID"])
        for i, f in enumerate(feats):
            doc = int(perm[i])
            cw = rs.encode(bytearray((doc >> (6 * k)) & 63 for k in range(4)))
            oligo = C.FP + "".join(cb[s] for s in cw) + C.IP + f + C.RP
            w1.writerow([f"img{i:08d}", oligo])
            w2.writerow([f"primo_{i}", oligo])
            w3.writerow([i, f"img{i:08d}"])
    return time.perf_counter() - t


def peer_read(path, n):
    import reedsolo

    from primo import constants as C
    from primo.barcodes import default_codebook

    rs = reedsolo.RSCodec(nsym=2, nsize=6, c_exp=6, prim=0x61, generator=3, fcr=1)
    sym = {w: i for i, w in enumerate(default_codebook())}
    perm = np.random.RandomState(42).permutation(2**24 - 1)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    t = time.perf_counter()
    ids, idx, feats = [], [], []
    with gzip.open(path, "rt") as fh:
        r = csv.reader(fh)
        next(r)
        for image_id, seq in itertools.islice(r, n):
            if len(seq) != 165 or seq[:18] != C.FP or seq[48:67] != C.IP or seq[147:] != C.RP:
                raise ValueError("layout")
            bc = seq[18:48]
            cw = bytearray(sym[bc[k:k + 5]] for k in range(0, 30, 5))
            if bytes(rs.encode(cw[:4])) != bytes(cw):
                raise ValueError("barcode")
            doc = cw[0] | cw[1] << 6 | cw[2] << 12 | cw[3] << 18
            ids.append(image_id)
            idx.append(int(inv[doc]))
            feats.append(seq[67:147])
    return time.perf_counter() - t


def read_in_fresh_process(pool, sequences):
    code = f"""
import resource, time, json
from primo.oligos import read_pool
from primo.barcodes import BarcodeScheme
BarcodeScheme().indices_of([0])   # the permutation tables (128 MB) are built before timing
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
p = read_pool({str(pool)!r}, sequences={sequences})
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"n": len(p), "seconds": dt, "peak_mb": peak / 1024, "base_mb": base / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=1_600_000)
    ap.add_argument("--peer-n", type=int, default=100_000)
    ap.add_argument("--keep", default=None, help="write the pool here and keep it")
    a = ap.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    out = Path(a.keep) if a.keep else Path(tmp.name) / "pool"
    from primo.barcodes import BarcodeScheme

    BarcodeScheme().encode([0])  # build the permutation before timing
    t_build, res = build(out, a.n)
    size = {p.name: p.stat().st_size for p in out.iterdir()}
    print(f"build    primo  {a.n:>9,} oligos {t_build:7.1f} s  {a.n / t_build:>10,.0f} oligos/s  "
          f"({res.report.n_failed:,} flagged by QC; database_seqs.csv.gz "
          f"{size['database_seqs.csv.gz'] / 2**20:.0f} MiB, twist_order.csv "
          f"{size['twist_order.csv'] / 2**20:.0f} MiB)")
    n_off = max(a.n // 8, 1)
    t_off, _ = build(Path(tmp.name) / "pool_noqc", n_off, qc="off")
    print(f"build    primo  {n_off:>9,} oligos {t_off:7.1f} s  {n_off / t_off:>10,.0f} oligos/s  "
          f"[qc off]")
    t_pb = peer_build(a.peer_n)
    print(f"build    peer   {a.peer_n:>9,} oligos {t_pb:7.1f} s  {a.peer_n / t_pb:>10,.0f} oligos/s  "
          f"(same three files, no QC) ratio {n_off / t_off / (a.peer_n / t_pb):.1f}x (qc off), "
          f"{a.n / t_build / (a.peer_n / t_pb):.1f}x (with QC)")
    for seqs in (True, False):
        r = read_in_fresh_process(out, seqs)
        print(f"read     primo  {r['n']:>9,} oligos {r['seconds']:7.1f} s  "
              f"{r['n'] / r['seconds']:>10,.0f} oligos/s  peak RSS {r['peak_mb']:.0f} MB "
              f"(of which {r['base_mb']:.0f} MB interpreter + permutation tables)"
              f"{'' if seqs else '  [sequences=False]'}")
        if seqs:
            t_read = r["seconds"]
            n_read = r["n"]
    t_pr = peer_read(out / "database_seqs.csv.gz", a.peer_n)
    print(f"read     peer   {a.peer_n:>9,} oligos {t_pr:7.1f} s  {a.peer_n / t_pr:>10,.0f} oligos/s  "
          f"ratio {n_read / t_read / (a.peer_n / t_pr):.1f}x")
    from primo.oligos import check_pool, read_pool

    pool = read_pool(out)
    t = time.perf_counter()
    rep = check_pool(pool)
    t_qc = time.perf_counter() - t
    print(f"qc       primo  {len(pool):>9,} oligos {t_qc:7.1f} s  {len(pool) / t_qc:>10,.0f} oligos/s  "
          f"({rep.message()[:90]})")
    tmp.cleanup()


if __name__ == "__main__":
    main()
