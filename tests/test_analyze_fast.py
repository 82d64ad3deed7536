"""The compiled common case of ``primo analyze`` (primo/reads/_fastreads.c) against numpy.

The kernel decides only the reads it can (IP at or near its offset in one orientation, a barcode
plain Reed-Solomon decodes into the pool) and leaves the rest to the vectorised implementation;
every read must come out exactly as the vectorised implementation alone places it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from primo import constants as C
from primo import reads as R
from primo.reads import counting, fastq, workers
from primo.reads import kernel as K
from primo.reads.structure import R_ASSIGNED
from primo.barcodes import BarcodeScheme

from _ci import skip_or_fail

try:
    from primo.reads import _fastreads as fast
except ImportError as exc:  # skipped on a machine without a compiler; CI must build and test it
    skip_or_fail(f"the C kernel primo.reads._fastreads was not built (no compiler at install "
                 f"time?): {exc}; build it with pip install -e .", allow_module_level=True)

ACGT = np.frombuffer(b"ACGT", np.uint8)
COMP = np.zeros(256, np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN"):
    COMP[_a] = _b


def _oligos(n, seed=0):
    rng = np.random.default_rng(seed)
    bc = BarcodeScheme().encode(np.arange(n))
    return [C.FP + b + C.IP + "".join(rng.choice(list("ACGT"), C.FEATURE_LENGTH)) + C.RP
            for b in bc]


def _hard_reads(oligos, n, seed=1, length=150):
    """Reads of every kind the analysis meets: both orientations, substitutions, Ns, indels,
    lower case, junk characters, trimmed reads, reads of nothing."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        o = np.frombuffer(oligos[rng.integers(len(oligos))].encode(), np.uint8)
        # the random prefix sometimes shorter or longer (IP then far from its offset)
        pre = C.READ_RANDOM_PREFIX if rng.random() < 0.95 else int(rng.integers(5, 45))
        insert = np.concatenate([ACGT[rng.integers(0, 4, pre)], o])
        if rng.random() < 0.5:
            insert = COMP[insert[::-1]]
        adapter = np.frombuffer(b"AGATCGGAAGAGC" * 4, np.uint8)   # read-through
        r = np.concatenate([insert, adapter])[:length].copy()
        k = rng.random()
        if k < 0.05:      # deletion / insertion somewhere
            p = int(rng.integers(0, length - 1))
            r = np.concatenate([r[:p], r[p + 1:], ACGT[:1]]) if rng.random() < 0.5 else \
                np.concatenate([r[:p], ACGT[rng.integers(0, 4, 1)], r[p:-1]])
        err = rng.random(len(r)) < rng.choice([0.0, 0.005, 0.02, 0.06])
        r[err] = ACGT[(np.searchsorted(ACGT, r[err]) + rng.integers(1, 4, err.sum())) % 4]
        r[rng.random(len(r)) < 0.003] = ord("N")
        if rng.random() < 0.02:
            r = np.where((r >= 65) & (r <= 90), r + 32, r).astype(np.uint8)   # lower case
        if rng.random() < 0.01:
            r[rng.integers(0, len(r), 2)] = ord("X")
        if rng.random() < 0.05:
            r = r[:rng.integers(0, length)]
        if rng.random() < 0.02:
            r = ACGT[rng.integers(0, 4, length)]
        out.append(r.tobytes())
    return out


def _same(a, b):
    for f in dataclasses.fields(R.Assignment):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x.dtype == y.dtype, f.name
        bad = np.flatnonzero(x != y)
        assert not len(bad), (f.name, bad[:10], x[bad[:10]], y[bad[:10]])


def _both(ra, seqs):
    lens = np.array([len(s) for s in seqs], np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    a = np.frombuffer(b"".join(seqs), np.uint8)
    pos = np.empty(len(seqs), np.int64)
    code = np.empty(len(seqs), np.uint8)
    decided = fast.assign(a, starts, lens, pos, code, *ra._kernel_args())
    return ra.assign_buffer(a, starts, lens), ra._assign_numpy(a, starts, lens), decided


@pytest.mark.parametrize("structure", [
    R.ReadStructure(),
    R.ReadStructure(max_shift=0, max_ip_mismatches=0, max_barcode_mismatches=1),
    R.ReadStructure(max_shift=7, max_ip_mismatches=3, rescue_indels=False),
], ids=["default", "strict", "loose"])
def test_kernel_matches_numpy(structure):
    oligos = _oligos(3000)
    seqs = _hard_reads(oligos, 6000)
    # a pool missing a fifth of the documents: not_in_pool reads, pool rule among the rest
    rng = np.random.default_rng(2)
    ra = R.ReadAssigner(np.flatnonzero(rng.random(3000) < 0.8), structure=structure)
    got, ref, decided = _both(ra, seqs)
    _same(got, ref)
    assert decided > 0.15 * len(seqs)             # the kernel did its share ...
    assert (ref.reason != R_ASSIGNED).sum() > 500  # ... and numpy the rest, of every kind
    assert set(np.unique(ref.reason).tolist()) >= {0, 1, 3, 4}
    assert set(np.unique(got.ip_stage).tolist()) >= {0, 1, 2}


@pytest.mark.parametrize("fp_anchor", [True, False])
def test_kernel_matches_numpy_on_75_nt_reads(fp_anchor):
    """75-cycle reads: no IP in them; forward ones are placed by FP (stage d), reverse ones have
    nothing to place them by -- the kernel decides both kinds."""
    oligos = _oligos(2000)
    seqs = _hard_reads(oligos, 5000, seed=3, length=75)
    ra = R.ReadAssigner(np.arange(0, 2000, 2), structure=R.ReadStructure(fp_anchor=fp_anchor))
    got, ref, decided = _both(ra, seqs)
    _same(got, ref)
    assert decided > 0.6 * len(seqs)
    placed = (ref.reason == R_ASSIGNED).mean()
    # without FP only the few reads with a short random prefix hold IP
    assert (0.15 < placed < 0.5) if fp_anchor else placed < 0.05


def test_kernel_matches_numpy_on_art_reads(adir, pool):
    import dnaio

    ra = R.ReadAssigner(pool.indices)
    for name in ("reads_R1.fastq.gz", "reads_R2.fastq.gz"):
        with dnaio.open(adir / name) as fh:
            seqs = [r.sequence.encode() for r in fh]
        got, ref, decided = _both(ra, seqs)
        _same(got, ref)
        assert decided > 0.5 * len(seqs)


def test_kernel_uses_the_pool_rows_not_the_indices():
    """Pool rows (positions) are not document indices when the pool is sparse or shuffled."""
    idx = np.array([1_600_042, 5, 77, 123_456, 9])
    oligos = dict(zip(idx.tolist(), (C.FP + b + C.IP + "ACGT" * 20 + C.RP
                                     for b in BarcodeScheme().encode(idx))))
    ra = R.ReadAssigner(idx)
    seqs = [("T" * 25 + oligos[i]).encode() for i in (9, 1_600_042, 77)]
    got, ref, decided = _both(ra, seqs)
    _same(got, ref)
    assert decided == 3 and got.position.tolist() == [4, 0, 2]


def test_switched_off_by_environment(monkeypatch):
    monkeypatch.setattr(K, "_FAST", False)
    monkeypatch.setenv("PRIMO_NO_KERNEL", "1")
    assert K.fastreads() is None
    assert R.ReadAssigner([1, 2])._kernel_args() is None
    monkeypatch.setattr(K, "_FAST", False)
    monkeypatch.delenv("PRIMO_NO_KERNEL")
    assert K.fastreads() is fast


def test_kernel_survives_pickling():
    import pickle

    ra = R.ReadAssigner(np.arange(100))
    assert ra._kernel_args() is not None
    ra2 = pickle.loads(pickle.dumps(ra))
    assert "_kernel" not in ra2.__dict__ and ra2._kernel_args() is not None


def test_kernel_rejects_inconsistent_arguments():
    ra = R.ReadAssigner(np.arange(10))
    a = np.frombuffer(b"ACGT" * 10, np.uint8)
    st, ln = np.array([0, 30], np.int64), np.array([10, 20], np.int64)   # 30 + 20 > 40
    with pytest.raises(ValueError, match="outside the buffer"):
        fast.assign(a, st, ln, np.empty(2, np.int64), np.empty(2, np.uint8), *ra._kernel_args())
    with pytest.raises(ValueError, match="sizes differ"):
        fast.assign(a, st, ln, np.empty(3, np.int64), np.empty(2, np.uint8), *ra._kernel_args())


# ------------------------------------------------------------------------------------------------
# FASTQ parsing
# ------------------------------------------------------------------------------------------------
def _parse_both(data, monkeypatch):
    out = []
    for kernel in (True, False):
        monkeypatch.setattr(K, "_FAST", fast if kernel else None)
        try:
            p = fastq._parse_chunk(data)
            out.append(("ok", p.starts.tolist(), p.lens.tolist(), p.n_lines, p.first_name,
                        p.last_name, [bytes(p.a[s:s + n]) for s, n in zip(p.starts, p.lens)]))
        except fastq._FormatProblem as e:
            out.append(("error", e.line, e.message))
    monkeypatch.setattr(K, "_FAST", False)
    return out


def test_parser_matches_numpy_and_dnaio(monkeypatch):
    rng = np.random.default_rng(4)
    recs = []
    for i in range(200):
        n = int(rng.integers(0, 160))
        seq = "".join(rng.choice(list("ACGTN"), n))
        q = "@" * n if i % 3 == 0 else "I" * n      # quality lines may start with '@'
        recs.append(f"@r{i}/{1 + i % 2} comment\n{seq}\n+\n{q}\n")
    good = "".join(recs).encode()
    for data in (good, good[:-1], b"@x\nACGT\n+\nIIII\n", b"@x/1\n\n+\n\n"):
        k, n = _parse_both(data, monkeypatch)
        assert k == n and k[0] == "ok"
    k, n = _parse_both(good, monkeypatch)
    assert k[4] == b"r0" and k[5] == b"r199" and len(k[1]) == 200 and k[3] == 800
    broken = [
        good.replace(b"\n+\n", b"\n-\n", 1),                       # no '+' line
        good[:len(good) // 2],                                      # record cut short
        good.replace(b"@r5/2", b"r5/2", 1),                         # header without '@'
        b"@x\nACGT\n+\nIII\n",                                      # lengths differ
        b"@x\r\nACGT\r\n+\r\nIIII\r\n",                             # Windows line ends
        b">x\nACGT\n",                                              # FASTA (dnaio path)
        b"\n@x\nACGT\n+\nIIII\n",
    ]
    for data in broken:
        k, n = _parse_both(data, monkeypatch)
        assert k == n, data[:40]


def test_round_robin_takes_files_in_turn():
    gens = [iter("ab"), iter("cdef"), iter(""), iter("g")]
    assert list(counting._round_robin(gens, width=2)) == list("acbdefg")
    assert list(counting._round_robin([iter("ab"), iter("cd")], width=1)) == list("abcd")


# ------------------------------------------------------------------------------------------------
# whole inputs per worker vs chunks cut by the main process
# ------------------------------------------------------------------------------------------------
_TIMING = {"seconds", "reads_per_second", "mapper", "startup_seconds", "worker_cpu_seconds",
           "main_cpu_seconds"}


def test_whole_files_and_chunks_agree(adir, pool, tmp_path):
    from primo.parallel import ProcessMapper, SerialMapper

    plain = tmp_path / "plain_R1.fastq"
    import gzip
    import shutil

    with gzip.open(adir / "reads_R1.fastq.gz", "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    files = [adir / "reads_R1.fastq.gz", adir / "reads_R2.fastq.gz", plain]
    out = []
    with ProcessMapper(2) as m:
        for by_file in (True, False):
            out.append(R.count_reads(pool, files, paired=False, mapper=m, chunksize=16 * 1024,
                                     show_progress=False, by_file=by_file))
    out.append(R.count_reads(pool, files, paired=False, mapper=SerialMapper(),
                             chunksize=16 * 1024, show_progress=False))
    for rc in out[1:]:
        assert (rc.counts == out[0].counts).all()
        assert ({k: v for k, v in rc.stats.items() if k not in _TIMING}
                == {k: v for k, v in out[0].stats.items() if k not in _TIMING})
    assert out[0].stats["inputs"][2]["reads"] == out[0].stats["inputs"][0]["reads"] > 0
    # two mate-pair inputs (lanes) on two workers: whole pairs per worker
    for m in (1, 2):
        shutil.copy(adir / f"reads_R{m}.fastq.gz", tmp_path / f"lane2_R{m}.fastq.gz")
    lanes = [adir / "reads_R1.fastq.gz", adir / "reads_R2.fastq.gz",
             tmp_path / "lane2_R1.fastq.gz", tmp_path / "lane2_R2.fastq.gz"]
    got = []
    with ProcessMapper(2) as m:
        for by_file in (True, False):
            got.append(R.count_reads(pool, lanes, paired=True, mapper=m, chunksize=16 * 1024,
                                     show_progress=False, by_file=by_file))
    assert (got[0].counts == got[1].counts).all() and got[0].stats["fragments"] > 3000
    assert ({k: v for k, v in got[0].stats.items() if k not in _TIMING}
            == {k: v for k, v in got[1].stats.items() if k not in _TIMING})


def _memory_pool(idx):
    """The parts of a pool count_reads needs, for documents ``idx``."""
    import types

    return types.SimpleNamespace(image_ids=np.array([f"doc{i}" for i in idx]), indices=idx,
                                 scheme=None, layout=None, path="hard pool")


def _same_for_any_batch(pool, files, monkeypatch, batches, **kw):
    """count_reads by chunks (reference) == by whole files with each deferred-batch size."""
    from primo.parallel import SerialMapper

    kw = dict(kw, mapper=SerialMapper(), chunksize=64 * 1024, show_progress=False)
    ref = R.count_reads(pool, files, by_file=False, **kw)
    for batch in batches:
        monkeypatch.setattr(workers, "_DEFER_BATCH", batch)
        rc = R.count_reads(pool, files, by_file=True, **kw)
        assert (rc.counts == ref.counts).all()
        assert ({k: v for k, v in rc.stats.items() if k not in _TIMING}
                == {k: v for k, v in ref.stats.items() if k not in _TIMING})
    return ref


def test_deferred_batches_change_nothing(tmp_path, monkeypatch):
    """Whole-input workers place the reads the kernel leaves in batches across chunks."""
    oligos = _oligos(2000)
    files = []
    for k in range(2):
        seqs = _hard_reads(oligos, 3000, seed=10 + k)
        f = tmp_path / f"hard{k}.fastq"
        f.write_bytes(b"".join(b"@r%d\n%s\n+\n%s\n" % (i, q, b"I" * len(q))
                               for i, q in enumerate(seqs)))
        files.append(f)
    idx = np.flatnonzero(np.random.default_rng(0).random(2000) < 0.9)
    ref = _same_for_any_batch(_memory_pool(idx), files, monkeypatch, (1, 333, 10**6),
                              paired=False)
    st = ref.stats
    assert st["ip_found_by"]["elsewhere"] > 0 and st["barcodes"]["indel_rescued"] > 0
    assert st["reads_by_reason"]["not_in_pool"] > 0 and st["reads_by_reason"]["no_ip"] > 0


def _hard_pairs(oligos, n, seed=0, length=150):
    """Mate pairs: R1 and R2 read the two ends of one insert (either orientation first)."""
    rng = np.random.default_rng(seed)
    adapter = np.frombuffer(b"AGATCGGAAGAGC" * 4, np.uint8)
    r1, r2 = [], []
    for _ in range(n):
        o = np.frombuffer(oligos[rng.integers(len(oligos))].encode(), np.uint8)
        insert = np.concatenate([ACGT[rng.integers(0, 4, C.READ_RANDOM_PREFIX)], o])
        ends = [np.concatenate([insert, adapter])[:length],
                np.concatenate([COMP[insert[::-1]], adapter])[:length]]
        if rng.random() < 0.5:
            ends.reverse()
        for out, r in zip((r1, r2), ends):
            r = r.copy()
            err = rng.random(len(r)) < rng.choice([0.0, 0.01, 0.05])
            r[err] = ACGT[(np.searchsorted(ACGT, r[err]) + rng.integers(1, 4, err.sum())) % 4]
            if rng.random() < 0.05:
                r = r[:rng.integers(20, length)]
            out.append(r.tobytes())
    return r1, r2


def test_deferred_mate_pairs_change_nothing(tmp_path, monkeypatch):
    """Whole-input workers defer a fragment whole when the kernel leaves either mate."""
    oligos = _oligos(1500)
    r1, r2 = _hard_pairs(oligos, 3000, seed=21)
    names = []
    for k, reads in enumerate((r1, r2)):
        f = tmp_path / f"frag_R{k + 1}.fastq"
        f.write_bytes(b"".join(b"@f%d %d:N:0:1\n%s\n+\n%s\n" % (i, k + 1, q, b"I" * len(q))
                               for i, q in enumerate(reads)))
        names.append(f)
    idx = np.flatnonzero(np.random.default_rng(1).random(1500) < 0.9)
    ref = _same_for_any_batch(_memory_pool(idx), names, monkeypatch, (1, 250, 10**6))
    assert ref.stats["paired"]
    pe, fr = ref.stats["paired_end"], ref.stats["fragments_by_reason"]
    # the mate outcomes partition the fragments and agree with the reasons
    assert sum(pe.values()) == 3000
    assert pe["both_agree"] + pe["r1_only"] + pe["r2_only"] == fr["assigned"]
    assert pe["both_agree"] > 2000 and pe["r1_only"] > 0 and pe["r2_only"] > 0
    # both mates read the same insert: where both decode, they name the same document
    assert pe["conflicts"] == fr["conflict"] == 0
    assert fr["assigned"] > 2000 and sum(fr.values()) == 3000 and fr["not_in_pool"] > 0


@pytest.mark.parametrize("name,match", [
    ("truncated.fastq.gz", r"truncated\.fastq\.gz: compressed data is truncated or corrupt"),
    ("malformed_plus.fastq", r"malformed_plus\.fastq, line 11, record 3: malformed FASTQ"),
    ("malformed_length.fastq", r"malformed_length\.fastq, line 16, record 4: malformed FASTQ"),
    ("empty.fastq.gz", r"empty\.fastq\.gz: read file is empty"),
])
@pytest.mark.parametrize("by_file", [True, False])
def test_broken_second_file_named_in_both_modes(adir, pool, name, match, by_file):
    from primo.errors import DataError
    from primo.parallel import ProcessMapper

    with ProcessMapper(2) as m, pytest.raises(DataError, match=match):
        R.count_reads(pool, [adir / "reads_R1.fastq.gz", adir / name], paired=False, mapper=m,
                      chunksize=16 * 1024, show_progress=False, by_file=by_file)
