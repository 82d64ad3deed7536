#!/usr/bin/env python
"""Speed of ``primo analyze`` against the published pipeline's approach, side by side.

Both read the same ``.fastq.gz`` files:

* **primo**: ``python -m primo analyze --pool POOL READS -o OUT -j P`` in a subprocess;
* **published approach**: ``zcat READS | grep IP`` (really run as a subprocess pipeline: only lines
  with an exact IP on the forward strand come out), then in Python for each line: cut the 30 nt 5'
  of IP, map each 5-mer through the codebook (exact), decode the codeword with ``reedsolo``, look
  the ID up in the pool.

Rates are reads in the files per second of wall time of the whole command (pool loading and
start-up included); primo's own counting rate (``stats.json``: reading, decoding, counting) is
printed too. The process tree of each command is sampled every 20 ms from /proc for its CPU time
and its peak memory (the sum of the proportional set sizes of the processes alive at once, so
shared memory counts once); ``resource.getrusage`` (RUSAGE_CHILDREN: the largest single process
that was waited for) is printed as well.

The reads come from a fast vectorised generator (speed only; correctness is measured on ART reads
by ``experiments/analyze_accuracy.py``): 25 random nt + oligo, forward or reverse complement, 150 nt,
substitutions rising from 0.2% to 1.2% along the read, 0.05% N, an indel in 3% of reads, binned
NextSeq qualities, drawn from the pool's documents with a log-normal abundance.

With ``--paired`` each lane is an R1/R2 pair of files whose mates read the two ends of a fragment;
primo counts fragments, the published approach greps every file (as it would).

Examples::

    python benchmarks/bench_analyze.py --docs 1600000 --reads 3000000 --processes 2
    python benchmarks/bench_analyze.py --docs 1600000 --reads 12000000 --files 4 [--paired]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from primo import constants as C
from primo.barcodes import BarcodeScheme

ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
COMP = np.zeros(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN"):
    COMP[_a] = _b
# binned NextSeq qualities (Phred 14, 21, 27, 32, 36): a byte -> quality for good / erroneous bases
_Q = np.array([14, 21, 27, 32, 36], dtype=np.uint8) + 33
Q_GOOD = np.where(np.arange(256) < 40, _Q[3], _Q[4]).astype(np.uint8)
Q_BAD = _Q[np.arange(256) % 3].astype(np.uint8)


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
def make_pool(n_docs: int, seed: int = 0):
    """(image_ids, indices 0..n-1, oligos n x 165 uint8) in the published layout."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n_docs, dtype=np.int64)
    bc = np.frombuffer(BarcodeScheme().encode_bytes(idx).tobytes(), np.uint8).reshape(n_docs, 30)
    feat = ACGT[rng.integers(0, 4, (n_docs, C.FEATURE_LENGTH), dtype=np.uint8)]

    def const(s):
        return np.broadcast_to(np.frombuffer(s.encode(), np.uint8), (n_docs, len(s)))

    oligos = np.ascontiguousarray(np.concatenate([const(C.FP), bc, const(C.IP), feat,
                                                  const(C.RP)], axis=1))
    ids = np.char.mod("%016x", rng.integers(0, 2**62, n_docs))
    return ids, idx, oligos


def write_pool(path, ids, oligos):
    """database_seqs.csv.gz, the published layout."""
    n, L = oligos.shape
    with gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as fh:
        fh.write(b"ImageID,Sequence\n")
        step = 1 << 17
        for a in range(0, n, step):
            b = min(n, a + step)
            rows = np.empty((b - a, 16 + 1 + L + 1), dtype=np.uint8)
            rows[:, :16] = np.frombuffer("".join(ids[a:b].tolist()).encode(), np.uint8).reshape(-1, 16)
            rows[:, 16] = ord(",")
            rows[:, 17:17 + L] = oligos[a:b]
            rows[:, -1] = 10
            fh.write(rows.tobytes())


def generate_reads(oligos, n_reads: int, seed: int = 1, read_length: int = 150,
                   chunk: int = 200_000, skew: float = 1.5, paired: bool = False):
    """Yield FASTQ bytes of reads (see the module docstring); with ``paired``, ``(R1, R2)`` bytes
    of mate pairs that read the two ends of each fragment."""
    rng = np.random.default_rng(seed)
    n_docs, olen = oligos.shape
    w = rng.lognormal(0.0, skew, n_docs)
    cdf = np.cumsum(w / w.sum())
    L = read_length
    P = C.READ_RANDOM_PREFIX
    amp_len = P + olen
    sub = np.linspace(0.002, 0.012, L, dtype=np.float32)
    serial = 0
    for a in range(0, n_reads, chunk):
        m = min(chunk, n_reads - a)
        docs = np.minimum(np.searchsorted(cdf, rng.random(m)), n_docs - 1)
        amp = np.empty((m, amp_len + 1), dtype=np.uint8)
        amp[:, :P] = ACGT[rng.integers(0, 4, (m, P), dtype=np.uint8)]
        amp[:, P:amp_len] = oligos[docs]
        amp[:, amp_len] = ord("A")
        rev = rng.random(m) < 0.5
        amp[rev, :amp_len] = COMP[amp[rev, :amp_len][:, ::-1]]
        if not paired:
            yield _fastq(serial, 1, *_sequenced(amp, rng, L, sub))
        else:
            other = amp.copy()
            other[:, :amp_len] = COMP[amp[:, :amp_len][:, ::-1]]
            yield (_fastq(serial, 1, *_sequenced(amp, rng, L, sub)),
                   _fastq(serial, 2, *_sequenced(other, rng, L, sub)))
        serial += m


def _sequenced(amp, rng, L, sub):
    """Reads of the first ``L`` nt of each amplicon: an indel in 3 % of them, substitutions rising
    along the read, Ns; binned NextSeq qualities. Returns (reads, qualities)."""
    m = len(amp)
    read = amp[:, :L].copy()
    # an indel in 3% of reads: shift the rest of the read by one
    ind = np.flatnonzero(rng.random(m) < 0.03)
    for r, k, d in zip(ind, rng.integers(0, L, len(ind)), rng.integers(0, 2, len(ind))):
        if d:   # deletion
            read[r, k:] = amp[r, k + 1:k + 1 + L - k]
        else:   # insertion
            read[r, k + 1:] = amp[r, k:L - 1]
    u = rng.random((m, L), dtype=np.float32)
    b = rng.integers(0, 256, (m, L), dtype=np.uint8)
    err = u < sub
    codes = np.searchsorted(ACGT, read[err])
    read[err] = ACGT[(codes + 1 + b[err] % 3) % 4]
    isn = u > np.float32(1 - 0.0005)
    read[isn] = ord("N")
    q = Q_GOOD[b]
    q[err] = Q_BAD[b[err]]
    q[isn] = _Q[0]
    return read, q


def _fastq(serial, mate, read, q):
    """FASTQ bytes of reads and qualities (n x L), Illumina-style names."""
    m, L = read.shape
    names = "".join(f"@NB501{serial + i:07d}:7:HX:1:{11101 + i % 900}:{i % 25000}:"
                    f"{(i * 7) % 20000} {mate}:N:0:1\n" for i in range(m)).encode()
    nl = np.frombuffer(names, np.uint8)
    ends = np.flatnonzero(nl == 10)
    hlen = np.diff(np.r_[-1, ends])
    rec_len = hlen + 2 * L + 4
    out = np.empty(int(rec_len.sum()), dtype=np.uint8)
    starts = np.r_[0, np.cumsum(rec_len)[:-1]]
    # header
    hstart = np.r_[0, ends[:-1] + 1]
    idx = np.repeat(starts - hstart, hlen) + np.arange(len(nl))
    out[idx] = nl
    body = np.empty((m, 2 * L + 4), dtype=np.uint8)
    body[:, :L] = read
    body[:, L:L + 3] = np.frombuffer(b"\n+\n", np.uint8)
    body[:, L + 3:2 * L + 3] = q
    body[:, -1] = 10
    bidx = (starts + hlen)[:, None] + np.arange(2 * L + 4)
    out[bidx] = body
    return out.tobytes()


def write_reads(path, oligos, n_reads, seed=1, path2=None):
    """Reads to ``path`` (gzip); with ``path2``, mate pairs to ``path`` and ``path2``."""
    import isal.igzip as igzip

    if path2 is None:
        with igzip.open(path, "wb", compresslevel=1) as fh:
            for data in generate_reads(oligos, n_reads, seed):
                fh.write(data)
        return
    with igzip.open(path, "wb", compresslevel=1) as f1, igzip.open(path2, "wb", compresslevel=1) as f2:
        for d1, d2 in generate_reads(oligos, n_reads, seed, paired=True):
            f1.write(d1)
            f2.write(d2)


# ------------------------------------------------------------------------------------------------
# measuring a command's process tree
# ------------------------------------------------------------------------------------------------
class TreeMonitor(threading.Thread):
    """Samples CPU time and RSS of a process and all its descendants from /proc."""

    def __init__(self, pid, interval=0.02):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.cpu = {}
        self.parent = {}
        self.peak_rss = 0
        self.stop = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _tree(self):
        kids = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as fh:
                    st = fh.read()
            except OSError:
                continue
            rest = st[st.rfind(")") + 2:].split()
            kids.setdefault(int(rest[1]), []).append((int(d), rest))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            for c, rest in kids.get(p, []):
                out.append((c, rest))
                todo.append(c)
        try:
            with open(f"/proc/{self.pid}/stat") as fh:
                st = fh.read()
            out.append((self.pid, st[st.rfind(")") + 2:].split()))
        except OSError:
            pass
        return out

    @staticmethod
    def _pss(pid):
        """Proportional set size (bytes): shared pages split between the processes mapping them."""
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def run(self):
        while not self.stop.is_set():
            mem = 0
            for p, rest in self._tree():
                self.cpu[p] = (int(rest[11]) + int(rest[12])) / self.tick
                self.parent[p] = int(rest[1])
                pss = self._pss(p)
                mem += pss if pss is not None else int(rest[21]) * self.page
            self.peak_rss = max(self.peak_rss, mem)
            self.stop.wait(self.interval)


_WRAP = ("import resource, subprocess, sys, json; p = subprocess.run(json.loads(sys.argv[1])); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
         "sys.exit(p.returncode)")


def measure(cmd, **kw):
    """Run ``cmd`` under a small wrapper process; returns (wall s, tree CPU s, peak tree RSS,
    getrusage max RSS of the command's processes in KiB, per-process CPU, proc, out, err)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _WRAP, json.dumps(cmd)], **kw)
    mon = TreeMonitor(proc.pid)
    mon.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    mon.stop.set()
    mon.join()
    lines = err.decode().strip().splitlines()
    maxrss = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    err = "\n".join(lines[:-1]).encode()
    # CPU of the command's main process and of everything it started (workers, zcat, grep)
    main = [p for p, q in mon.parent.items() if q == proc.pid]
    main_cpu = sum(mon.cpu[p] for p in main)
    others = sum(c for p, c in mon.cpu.items() if p != proc.pid and p not in main)
    return wall, sum(mon.cpu.values()), mon.peak_rss, maxrss, (main_cpu, others), proc, out, err


# ------------------------------------------------------------------------------------------------
# the published approach
# ------------------------------------------------------------------------------------------------
PUBLISHED = r'''
import sys, gzip, csv, io, reedsolo, time
t0 = time.perf_counter()
c0 = time.process_time()
rs = reedsolo.RSCodec(nsym=2, nsize=6, c_exp=6, prim=0x61, generator=3, fcr=1)
from primo.barcodes import BarcodeScheme
from primo import constants as C
words = {{w: i for i, w in enumerate(BarcodeScheme().codebook)}}
ids = {{}}
with gzip.open({pool!r}, "rt") as fh:
    r = csv.reader(fh); next(r)
    for image_id, seq in r:
        bc = seq[18:48]
        sym = [words[bc[i:i + 5]] for i in range(0, 30, 5)]
        ids[sym[0] | sym[1] << 6 | sym[2] << 12 | sym[3] << 18] = image_id
counts = dict.fromkeys(ids.values(), 0)
t1 = time.perf_counter()
c1 = time.process_time()
IP = C.IP
err = reedsolo.ReedSolomonError
grep = "zcat " + " ".join({reads!r}) + " | grep " + IP
import subprocess
p = subprocess.Popen(grep, shell=True, stdout=subprocess.PIPE)
decoded = 0
for line in io.TextIOWrapper(p.stdout, "ascii"):
    k = line.find(IP)
    if k < 30:
        continue
    bc = line[k - 30:k]
    try:
        sym = [words[bc[i:i + 5]] for i in range(0, 30, 5)]
        d = rs.decode(bytearray(sym))[0]
    except (KeyError, err):
        continue
    i = ids.get(d[0] | d[1] << 6 | d[2] << 12 | d[3] << 18)
    if i is not None:
        counts[i] += 1
        decoded += 1
p.wait()
print(decoded, t1 - t0, time.perf_counter() - t1, time.process_time() - c1)
'''


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1_600_000, help="pool size")
    ap.add_argument("--reads", type=int, default=3_000_000)
    ap.add_argument("--files", type=int, default=1, help="split the reads over this many files")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--workdir", default=None, help="keep (and reuse) generated data here")
    ap.add_argument("--paired", action="store_true",
                    help="mate pairs (R1/R2 files per lane; --reads counts both mates)")
    ap.add_argument("--skip-published", action="store_true")
    ap.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="primo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    pool = work / f"pool_{args.docs}.csv.gz"
    if args.paired:
        reads = [work / f"pairs_{args.docs}_{args.reads}_{k}_R{m}.fastq.gz"
                 for k in range(args.files) for m in (1, 2)]
    else:
        reads = [work / f"reads_{args.docs}_{args.reads}_{k}.fastq.gz" for k in range(args.files)]
    if args.generate_only:
        t = time.perf_counter()
        ids, idx, oligos = make_pool(args.docs)
        if not pool.exists():
            write_pool(pool, ids, oligos)
        n = args.reads // 2 if args.paired else args.reads
        per = -(-n // args.files)
        for k in range(args.files):
            count = min(per, n - k * per)
            if args.paired:
                write_reads(reads[2 * k], oligos, count, seed=1 + k, path2=reads[2 * k + 1])
            else:
                write_reads(reads[k], oligos, count, seed=1 + k)
        print(f"generated a {args.docs:,}-document pool and {args.reads:,} reads in "
              f"{time.perf_counter() - t:.1f} s ({work})")
        return 0
    if not pool.exists() or not all(r.exists() for r in reads):
        # in a separate process, so that this one stays small (getrusage of children below)
        subprocess.run([sys.executable, __file__, "--generate-only", "--docs", str(args.docs),
                        "--reads", str(args.reads), "--files", str(args.files), "--workdir",
                        str(work)] + (["--paired"] if args.paired else []), check=True)
    size = sum(r.stat().st_size for r in reads)
    print(f"reads: {args.reads:,} in {len(reads)} file(s), {size / 1e6:.0f} MB gzip; "
          f"pool {args.docs:,} documents; {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}")

    out = work / "out"
    cmd = [sys.executable, "-m", "primo", "-q", "analyze", "--pool", str(pool), *map(str, reads),
           "-o", str(out), "-j", str(args.processes), "--overwrite"]
    wall, cpu, rss, maxrss, per, proc, _, err = measure(cmd, stdout=subprocess.DEVNULL,
                                                        stderr=subprocess.PIPE)
    if proc.returncode:
        sys.exit(f"primo analyze failed: {err.decode()}")
    stats = json.loads((out / "stats.json").read_text())
    primo_rate = args.reads / wall
    load = stats["pool"].get("load_seconds", 0.0)
    print(f"\nprimo analyze (-j {args.processes}): {wall:.2f} s wall, {cpu:.2f} s CPU, "
          f"{primo_rate:,.0f} reads/s end to end; pool loaded in {load:.1f} s, then counting "
          f"{stats['seconds']:.2f} s = {stats['reads_per_second']:,.0f} reads/s "
          f"({stats['startup_seconds']:.1f} s start-up, then "
          f"{args.reads / (stats['seconds'] - stats['startup_seconds']):,.0f} reads/s); "
          f"{stats['counted']:,} counted ({100 * stats['counted'] / args.reads:.1f}%)")
    print(f"  peak memory: {rss / 2**20:,.0f} MiB (process tree, sum of PSS sampled every 20 ms); "
          f"getrusage children max RSS {maxrss / 1024:,.0f} MiB (largest process)")
    # CPU while counting: the main process after start-up + all worker processes
    primo_cpu = stats["main_cpu_seconds"] + per[1]
    print(f"  CPU: {per[0]:.1f} s main process (pool loading took {load:.1f} s), {per[1]:.1f} s "
          f"workers; while counting {1e6 * primo_cpu / args.reads:.2f} us per read")
    if args.skip_published:
        return 0
    script = PUBLISHED.format(pool=str(pool),
                              reads=[str(r) for r in reads])
    wall_p, cpu_p, rss_p, _, per_p, proc, out_p, err = measure([sys.executable, "-c", script],
                                                               stdout=subprocess.PIPE,
                                                               stderr=subprocess.PIPE)
    if proc.returncode:
        sys.exit(f"published pipeline failed: {err.decode()}")
    decoded, load_p, loop_p, loop_cpu = out_p.decode().split()[-4:]
    decoded, load_p, loop_p, loop_cpu = int(decoded), float(load_p), float(loop_p), float(loop_cpu)
    pub_cpu = loop_cpu + per_p[1]   # Python decoding + zcat + grep
    pub_rate = args.reads / wall_p
    pub_steady = args.reads / loop_p
    print(f"published approach (zcat | grep IP, reedsolo): {wall_p:.2f} s wall, {cpu_p:.2f} s CPU, "
          f"{pub_rate:,.0f} reads/s end to end; after loading the pool ({load_p:.1f} s) "
          f"{pub_steady:,.0f} reads/s; {decoded:,} counted ({100 * decoded / args.reads:.1f}%); "
          f"peak memory {rss_p / 2**20:,.0f} MiB; while counting {1e6 * pub_cpu / args.reads:.2f} us "
          f"CPU per read (Python {loop_cpu:.1f} s, zcat + grep {per_p[1]:.1f} s)")
    primo_steady = args.reads / (stats["seconds"] - stats["startup_seconds"])
    print(f"\nratio primo / published: {primo_rate / pub_rate:.1f}x end to end, "
          f"{primo_steady / pub_steady:.1f}x after start-up (primo {primo_steady:,.0f} vs "
          f"{pub_steady:,.0f} reads/s), {pub_cpu / primo_cpu:.1f}x in CPU time per read while "
          f"counting")
    ncpu = len(os.sched_getaffinity(0))
    print(f"CPU-bound projection on {ncpu} idle cores (while counting): primo "
          f"{ncpu * args.reads / primo_cpu:,.0f} reads/s, published "
          f"{min(ncpu, 3) * args.reads / pub_cpu:,.0f} reads/s (its 3 processes)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
