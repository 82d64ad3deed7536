"""primo analyze, reads -> counts: engine, files, parallel runs, CLI, broken inputs.

Data in tests/data/analyze/ (see its README.md): a 400-document pool in the published layout,
paired ART-simulated NextSeq reads (HS25 profile, 150 nt, quality shift -6, indel rate 3e-4) with
their truth table, and broken files, each with the error it must raise.
"""

import csv
import gzip
import io
import json
import shutil

import numpy as np
import pytest

from primo import constants as C
from primo import reads as R
from primo.reads import fastq
from primo.barcodes import BarcodeScheme
from primo.io import write_marker
from primo.barcodes.decode import decode_reference
from primo.dna import revcomp
from primo.errors import DataError, UsageError

PROCS = [1, 2]


@pytest.fixture(scope="module")
def truth(adir, pool):
    with open(adir / "truth.csv") as fh:
        rows = list(csv.DictReader(fh))
    row_of = {str(i): k for k, i in enumerate(pool.image_ids.tolist())}
    return {r["Read"]: row_of[r["ImageID"]] for r in rows}


def _records(path):
    import dnaio

    with dnaio.open(path) as r:
        return [(rec.name, rec.sequence, rec.qualities) for rec in r]


def _truth_of(records, truth):
    return np.array([truth[name.split("-")[0]] for name, _, _ in records])


# ------------------------------------------------------------------------------------------------
# the engine
# ------------------------------------------------------------------------------------------------
def _oligo(index, feature="ACGT" * 20):
    return C.FP + BarcodeScheme().encode([index])[0] + C.IP + feature + C.RP


def test_forward_reverse_and_reasons():
    ra = R.ReadAssigner([7, 11, 1600042])
    o = _oligo(1600042)
    fwd = "GATTACAGATTACAGATTACAGATT" + o
    rev = revcomp(fwd)
    bc = BarcodeScheme().encode([11])[0]
    mutated = "T" * 25 + C.FP + bc[:7] + ("A" if bc[7] != "A" else "C") + bc[8:] + C.IP + "A" * 80
    not_in_pool = "T" * 25 + _oligo(12)
    junk = "ACGT" * 40
    short = revcomp("T" * 25 + _oligo(7))[:120]   # reverse read ending inside the barcode
    a = ra.assign([fwd[:150], rev[:150], mutated, not_in_pool, junk, short])
    assert a.position.tolist() == [2, 2, 1, -1, -1, -1]
    assert [R.REASONS[r] for r in a.reason] == ["assigned", "assigned", "assigned", "not_in_pool",
                                                "no_ip", "barcode_truncated"]
    assert a.strand.tolist()[:4] == [0, 1, 0, 0]
    assert [R.HOW[h] for h in a.how[:3]] == ["exact", "exact", "corrected"]
    s = a.summary()
    assert s["reasons"]["assigned"] == 3 and s["ip_found"] == {"forward": 3, "reverse": 2}


def test_ip_search_stages_and_indel_rescue():
    ra = R.ReadAssigner([5, 6])
    o = _oligo(6)
    ip_mm = "C" * 25 + o.replace(C.IP, "AGCACTGAGTATTTGTCCG")             # 1 mismatch in IP
    shifted = "C" * 28 + o                                               # prefix 3 nt longer
    moved = "C" * 60 + o                                                 # far from the offset
    bc = BarcodeScheme().encode([6])[0]
    deletion = "C" * 25 + C.FP + bc[:12] + bc[13:] + C.IP + "A" * 80      # 29-nt barcode
    insertion = "C" * 25 + C.FP + bc[:17] + "G" + bc[17:] + C.IP + "A" * 80
    a = ra.assign([ip_mm, shifted, moved, deletion, insertion])
    assert a.position.tolist() == [1, 1, 1, 1, 1]
    # the indels move IP by 1 nt: found near the expected offset
    assert [R.IP_STAGES[g] for g in a.ip_stage] == ["near_offset", "near_offset", "elsewhere",
                                                    "near_offset", "near_offset"]
    assert [R.HOW[h] for h in a.how[3:]] == ["indel_rescued", "indel_rescued"]
    # without the rescue the indel reads are not placed
    plain = R.ReadAssigner([5, 6], structure=R.ReadStructure(rescue_indels=False))
    assert plain.assign([deletion, insertion]).position.tolist() == [-1, -1]


def test_inexact_ip_elsewhere_needs_fp_context():
    ra = R.ReadAssigner([6])
    o = _oligo(6)
    ip2 = "AGCACTGAGTATTTGACCG"  # 2 mismatches
    with_fp = "C" * 70 + o.replace(C.IP, ip2)
    without_fp = "C" * 70 + o.replace(C.IP, ip2).replace(C.FP, "T" * 18)
    a = ra.assign([with_fp, without_fp])
    assert a.position.tolist() == [0, -1]
    assert R.REASONS[a.reason[1]] == "no_ip"


def test_short_reads_placed_by_fp():
    """Reads too short to hold IP (75-cycle runs) are placed by FP when forward."""
    ra = R.ReadAssigner([5, 6, 1600042])
    insert = "G" * 25 + _oligo(6)
    fp_mm = "G" * 25 + "GCCGACGAGTTTCCATAG" + _oligo(6)[18:]      # 1 mismatch in FP
    reads = [insert[:75], fp_mm[:75], insert[2:77],                    # prefix 2 nt shorter
             insert[:73],                                               # ends with the barcode
             insert[:70],                                               # 3 barcode nt missing
             insert[:62],                                               # 11 missing: truncated
             revcomp(insert)[:75],                                      # reverse: no barcode
             ("G" * 25 + _oligo(6).replace(C.IP, "T" * 19))[:150]]      # 150 nt, IP destroyed
    a = ra.assign(reads)
    assert a.position.tolist() == [1, 1, 1, 1, 1, -1, -1, 1]
    assert [R.REASONS[r] for r in a.reason[5:7]] == ["barcode_truncated", "no_ip"]
    assert [R.IP_STAGES[g] for g in a.ip_stage] == ["fp_anchored"] * 6 + ["none", "fp_anchored"]
    assert [R.HOW[h] for h in a.how[:5]] == ["exact"] * 4 + ["corrected"]
    off = R.ReadAssigner([5, 6, 1600042], structure=R.ReadStructure(fp_anchor=False))
    assert (off.assign(reads).position == -1).all()
    assert R.ReadStructure().min_read_length == {"forward": 73, "reverse": 147}


def test_paired_75_cycle_reads_count_every_fragment(tmp_path, run_cli):
    """2 x 75 nt: one mate of every fragment starts with the random prefix and FP."""
    import types

    rng = np.random.default_rng(5)
    idx = np.arange(40) * 1000
    pool = types.SimpleNamespace(image_ids=np.array([f"d{i}" for i in idx]), indices=idx,
                                 scheme=None, layout=None, path="p")
    truth = rng.integers(0, 40, 300)
    r1, r2 = [], []
    for k, d in enumerate(truth):
        insert = "".join(rng.choice(list("ACGT"), 25)) + _oligo(int(idx[d])) + "AGATCGGAAG"
        a, b = insert[:75], revcomp(insert)[:75]
        if k % 2:
            a, b = b, a
        r1.append(f"@f{k} 1:N:0:1\n{a}\n+\n{'I' * 75}\n")
        r2.append(f"@f{k} 2:N:0:1\n{b}\n+\n{'I' * 75}\n")
    (tmp_path / "s_R1.fastq").write_text("".join(r1))
    (tmp_path / "s_R2.fastq").write_text("".join(r2))
    rc = R.count_reads(pool, [tmp_path / "s_R1.fastq", tmp_path / "s_R2.fastq"],
                       show_progress=False)
    assert (rc.counts == np.bincount(truth, minlength=40)).all()
    assert rc.stats["paired_end"]["both_agree"] == 0 and rc.stats["fragments"] == 300
    assert rc.stats["reads_too_short_for_reverse"] == 600
    # the command line says why only half of single-end short reads are placed
    with gzip.open(tmp_path / "database_seqs.csv.gz", "wt") as fh:
        fh.write("ImageID,Sequence\n" + "".join(f"d{i},{_oligo(int(i))}\n" for i in idx))
    res, out, err = run_cli(["analyze", "--pool", tmp_path / "database_seqs.csv.gz",
                             tmp_path / "s_R1.fastq", "-o", tmp_path / "out", "-j", "1"])
    assert res.exit_code == 0, err
    assert "counted 150 of 300 reads" in out and "shorter than 147 nt" in out


def _reference(seq, pool_idx, S):
    """Per-read reference of the placement rule (no rescues), decoding with reedsolo."""
    li, bl = len(S.ip), S.barcode_length
    rc_ip = revcomp(S.ip)
    exp = {0: S.forward_ip_offset, 1: S.reverse_ip_offset}
    pats = {0: S.ip, 1: rc_ip}

    def mm(a, b):
        return sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))

    cands = [(s, exp[s]) for s in (0, 1) if seq[exp[s]:exp[s] + li] == pats[s]]
    if not cands:
        for s in (0, 1):
            best = None
            for o in range(max(exp[s] - S.max_shift, 0), exp[s] + S.max_shift + 1):
                w = seq[o:o + li]
                m = mm(w, pats[s]) if len(w) == li else li
                key = (m, abs(o - exp[s]))
                if m <= S.max_ip_mismatches and (best is None or key < best[0]):
                    best = (key, o)
            if best:
                cands.append((s, best[1]))
    if not cands:
        fp_end = S.fp[-S.flank_length:]
        for s in (0, 1):
            best = None
            for o in range(0, len(seq) - li + 1):
                m = mm(seq[o:o + li], pats[s])
                if m > S.max_ip_mismatches:
                    continue
                if m:
                    if s == 0:
                        f0 = o - bl - S.flank_length
                        fl = seq[f0:o - bl] if f0 >= 0 else ""
                        ok = len(fl) == S.flank_length and mm(fl, fp_end) <= 1
                    else:
                        f0 = o + li + bl
                        fl = seq[f0:f0 + S.flank_length]
                        ok = len(fl) == S.flank_length and mm(fl, revcomp(fp_end)) <= 1
                    if not ok:
                        continue
                key = (m, abs(o - exp[s]))
                if best is None or key < best[0]:
                    best = (key, o)
            if best:
                cands.append((s, best[1]))
    docs = set()
    for s, o in cands:
        if s == 0:
            w = seq[max(o - bl, 0):o]
            w = "N" * (bl - len(w)) + w
        else:
            w = seq[o + li:o + li + bl]
            w = revcomp(w + "N" * (bl - len(w)))
        w = "".join(c if c in "ACGT" else "N" for c in w.upper())
        if w.count("N") > S.max_missing and (w.startswith("N" * (S.max_missing + 1))
                                             or w.endswith("N" * (S.max_missing + 1))):
            continue
        r = decode_reference([w], pool_indices=pool_idx, max_distance=S.max_barcode_mismatches)
        if r.status[0] < 4:
            docs.add(int(r.index[0]))
    return docs.pop() if len(docs) == 1 else -1


def test_engine_matches_per_read_reference(adir, pool):
    """The vectorised engine gives the same documents as a simple per-read implementation."""
    S = R.ReadStructure(rescue_indels=False)
    ra = R.ReadAssigner(pool.indices, structure=S)
    recs = _records(adir / "reads_R1.fastq.gz")[:250] + _records(adir / "reads_R2.fastq.gz")[:250]
    # make some harder: Ns, a shifted prefix, a trimmed read
    rng = np.random.default_rng(3)
    seqs = []
    for i, (_, s, _) in enumerate(recs):
        if i % 7 == 0:
            p = rng.integers(0, len(s), 3)
            s = "".join("N" if k in p else c for k, c in enumerate(s))
        if i % 11 == 0:
            s = "A" + s[:-1]
        if i % 13 == 0:
            s = s[:140]
        seqs.append(s)
    got = ra.assign(seqs).position
    expect_idx = np.array([_reference(s, pool.indices, S) for s in seqs])
    expect = np.where(expect_idx >= 0, pool.positions_of(np.maximum(expect_idx, 0)), -1)
    assert (got == expect).all(), np.flatnonzero(got != expect)[:10]


def test_art_reads_accuracy(adir, pool, truth):
    """>= 97% of ART-simulated reads on the right document, <= 0.1% on a wrong one."""
    ra = R.ReadAssigner(pool.indices)
    for name in ("reads_R1.fastq.gz", "reads_R2.fastq.gz"):
        recs = _records(adir / name)
        t = _truth_of(recs, truth)
        a = ra.assign([s for _, s, _ in recs])
        right = (a.position == t).mean()
        wrong = ((a.position >= 0) & (a.position != t)).mean()
        assert right >= 0.97, (name, right)
        assert wrong <= 0.001, (name, wrong)


@pytest.mark.parametrize("procs", PROCS)
def test_count_reads_paired_matches_truth(adir, pool, truth, procs):
    from primo.parallel import get_mapper

    files = [adir / "reads_R1.fastq.gz", adir / "reads_R2.fastq.gz"]
    with get_mapper(procs) as m:
        rc = R.count_reads(pool, files, mapper=m, chunksize=32 * 1024, show_progress=False)
    s = rc.stats
    assert s["paired"] and s["fragments"] == len(truth) and s["reads"] == 2 * len(truth)
    assert [f["mate"] for f in s["inputs"]] == ["R1", "R2"]
    assert s["paired_end"]["conflicts"] == 0
    t = np.bincount(_truth_of(_records(files[0]), truth), minlength=len(pool))
    assert rc.total >= 0.97 * len(truth)
    # every count is at most the truth (no wrong assignment) in this data set
    assert (rc.counts <= t).all()
    assert s["counted"] == rc.total == s["fragments_by_reason"]["assigned"]
    assert sum(s["fragments_by_reason"].values()) == s["fragments"]


def test_identical_for_1_and_2_processes(adir, pool):
    from primo.parallel import get_mapper

    out = []
    for procs in PROCS:
        with get_mapper(procs) as m:
            # two files, many small chunks: the ring of shared-memory slots is reused many times
            rc = R.count_reads(pool, [adir / "reads_R1.fastq.gz", adir / "reads_R2.fastq.gz"],
                               paired=False, mapper=m, chunksize=16 * 1024, show_progress=False)
        timing = {"seconds", "reads_per_second", "mapper", "startup_seconds",
                  "worker_cpu_seconds", "main_cpu_seconds"}
        st = {k: v for k, v in rc.stats.items() if k not in timing}
        out.append((rc.counts, st))
    assert (out[0][0] == out[1][0]).all()
    assert out[0][1] == out[1][1]


def test_chunking_keeps_records_whole():
    """Cuts never split a record, also where quality lines start with '@'."""
    import dnaio

    rng = np.random.default_rng(0)
    recs = []
    for i in range(300):
        n = int(rng.integers(20, 160))
        seq = "".join(rng.choice(list("ACGT"), n))
        q = "@" * n if i % 3 == 0 else "I" * n
        recs.append(f"@read{i} x\n{seq}\n+\n{q}\n")
    data = "".join(recs).encode()
    for size in (64, 300, 1000, 5000):
        # chunks are views of one reused buffer: copy each before the next
        chunks = [bytes(c) for c in fastq._fastq_chunks(io.BytesIO(data), size)]
        assert b"".join(chunks) == data
        names = []
        for c in chunks:
            with dnaio.open(io.BytesIO(c)) as r:
                names += [x.name for x in r]
        assert names == [f"read{i} x" for i in range(300)]


def test_pair_inputs():
    from pathlib import Path

    got = R.pair_inputs(["a_R1_001.fastq.gz", "b.fastq", "a_R2_001.fastq.gz", "c_R2.fq"])
    assert got == [(Path("a_R1_001.fastq.gz"), Path("a_R2_001.fastq.gz")), (Path("b.fastq"), None),
                   (Path("c_R2.fq"), None)]
    assert R.pair_inputs(["x", "y"], paired=True) == [(Path("x"), Path("y"))]
    assert R.pair_inputs(["a_R1.fq", "a_R2.fq"], paired=False) == [(Path("a_R1.fq"), None),
                                                                   (Path("a_R2.fq"), None)]
    with pytest.raises(UsageError, match="R1 R2"):
        R.pair_inputs(["x", "y", "z"], paired=True)


def test_compression_detected_by_content(adir, pool, tmp_path):
    plain = gzip.decompress((adir / "reads_R1.fastq.gz").read_bytes())
    (tmp_path / "plain_named.fastq.gz").write_bytes(plain)      # not gzip despite the name
    shutil.copy(adir / "reads_R1.fastq.gz", tmp_path / "gz_named.fastq")
    from primo.parallel import SerialMapper

    a = R.count_reads(pool, [tmp_path / "plain_named.fastq.gz"], mapper=SerialMapper(),
                      show_progress=False)
    b = R.count_reads(pool, [tmp_path / "gz_named.fastq"], mapper=SerialMapper(),
                      show_progress=False)
    assert (a.counts == b.counts).all() and a.total > 0


def test_exclusions_and_counts_roundtrip(adir, pool, tmp_path):
    from primo.parallel import SerialMapper

    first = str(pool.image_ids[0])
    rc = R.count_reads(pool, [adir / "reads_R1.fastq.gz"], mapper=SerialMapper(),
                       exclude=[first], show_progress=False)
    assert rc.counts[0] == 0 and rc.stats["excluded"][first] > 0
    rc.write(tmp_path)
    back = R.ReadCounts.read(tmp_path / "counts.csv.gz")
    assert back.image_ids.tolist() == pool.image_ids.tolist()
    assert (back.counts == rc.counts).all()
    with pytest.raises(UsageError, match="no document of the pool"):
        R.count_reads(pool, [adir / "reads_R1.fastq.gz"], exclude=["nope"], show_progress=False)


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def test_cli_writes_published_layouts(run_cli, adir, pool, tmp_path):
    out = tmp_path / "out"
    res, stdout, err = run_cli(["analyze", "--pool", adir / "database_seqs.csv.gz",
                                adir / "reads_R1.fastq.gz", adir / "reads_R2.fastq.gz", "-o", out,
                                "--distances", adir / "distances.csv.gz", "-j", "2",
                                "--exclude", pool.image_ids[3]])
    assert res.exit_code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [".primo-output.json", "counts.csv.gz",
                                                     "recall.png", "report.html", "report_files",
                                                     "stats.json", "thresholds.csv"]
    with gzip.open(out / "counts.csv.gz", "rt", newline="") as fh:
        text = fh.read()
    lines = text.split("\n")
    assert lines[0] == "ImageID,Count" and lines[-1] == "" and len(lines) == len(pool) + 2
    assert [ln.split(",")[0] for ln in lines[1:-1]] == pool.image_ids.tolist()
    assert "#" not in text
    counts = np.array([int(ln.split(",")[1]) for ln in lines[1:-1]])
    assert counts[3] == 0 and (counts == 0).any()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["provenance"]["command"].startswith("primo analyze")
    assert stats["reads"] == 2 * stats["fragments"] and stats["paired"]
    assert stats["excluded"] == {pool.image_ids[3]: stats["excluded"][pool.image_ids[3]]}
    assert stats["search"]["k"] == 100
    th = (out / "thresholds.csv").read_text().splitlines()
    assert th[0] == "Threshold,Number Retrieved,100-Nearest-Neighbor Recall"
    rows = np.array([[int(x) for x in ln.split(",")] for ln in th[1:]])
    # recompute independently: the 100 smallest distances, documents with count >= t
    d = {}
    with gzip.open(adir / "distances.csv.gz", "rt") as fh:
        for r in csv.DictReader(fh):
            d[r["ImageID"]] = float(r["Euclidean Distance"])
    dist = np.array([d[i] for i in pool.image_ids])
    nn = np.argsort(dist, kind="stable")[:100]
    for t, n_ret, rec in rows:
        assert n_ret == (counts >= t).sum() and rec == (counts[nn] >= t).sum()
    assert set(rows[:, 0]) == set(counts.tolist())
    assert (out / "recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in err and "wrote" not in stdout   # messages about files: stderr


def test_cli_counts_input_and_labels(run_cli, adir, pool, tmp_path):
    counts = tmp_path / "decoded.csv"
    rng = np.random.default_rng(1)
    c = rng.poisson(3, len(pool))
    order = rng.permutation(len(pool))          # any row order: aligned to the pool
    counts.write_text("ImageID,Count\n" + "".join(f"{pool.image_ids[i]},{c[i]}\n" for i in order))
    labels = tmp_path / "labels.csv"
    lab = np.where(np.arange(len(pool)) % 2 == 0, "cat", "dog")
    labels.write_text("ImageID,Label\n" + "".join(f"{i},{v}\n" for i, v in
                                                  zip(pool.image_ids, lab)) + "q1,cat\n")
    out = tmp_path / "out"
    res, stdout, err = run_cli(["analyze", "--pool", adir / "database_seqs.csv.gz", "--counts",
                                counts, "-o", out, "--distances", adir / "distances.csv.gz",
                                "--labels", labels, "--query-id", "q1", "--map-k", "5"])
    assert res.exit_code == 0, err
    stats = json.loads((out / "stats.json").read_text())
    from primo.evaluation.recall import map_at_k_from_scores

    assert stats["search"]["map_at_k"]["5"] == pytest.approx(
        map_at_k_from_scores(c, lab, "cat", 5)[0])
    assert "mAP@k" in stdout


def test_cli_usage_errors(run_cli, adir, tmp_path):
    res, _, err = run_cli(["analyze", "--pool", adir / "database_seqs.csv.gz", "-o", tmp_path / "o"])
    assert res.exit_code == 2 and "--counts: give read files or a counts table" in err
    res, _, err = run_cli(["analyze", "--pool", adir / "database_seqs.csv.gz",
                           adir / "reads_R1.fastq.gz", "-o", tmp_path / "o", "--features", "x.h5"])
    assert res.exit_code == 2 and "--features and --queries go together" in err
    res, _, err = run_cli(["analyze", "--pool", adir / "database_seqs.csv.gz",
                           adir / "reads_R1.fastq.gz", "-o", tmp_path / "o", "--exclude", "nope"])
    assert res.exit_code == 2 and "nope" in err
    # the library names the problem, the command line adds the option
    assert "error: --exclude: excluded ImageID nope: no document of the pool has it" in err
    assert isinstance(res.error, UsageError) and "--" not in str(res.error)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------------
# broken inputs: each with the error it must raise, exit 1, nothing written (1 and 2 processes)
# ------------------------------------------------------------------------------------------------
BROKEN_READS = [
    # file, words the one-line message must contain
    ("truncated.fastq.gz", ["truncated.fastq.gz", "truncated or corrupt", "re-download"]),
    ("malformed_plus.fastq", ["malformed_plus.fastq", "line 11", "record 3", "'+'"]),
    ("malformed_length.fastq", ["malformed_length.fastq", "line 16", "record 4",
                                "Length of sequence and qualities differ"]),
    ("empty.fastq", ["empty.fastq", "empty"]),
    ("empty.fastq.gz", ["empty.fastq.gz", "empty"]),
    ("not_fastq.txt", ["not_fastq.txt", "not a FASTQ"]),
]


@pytest.mark.parametrize("procs", PROCS)
@pytest.mark.parametrize("name,words", BROKEN_READS, ids=[b[0] for b in BROKEN_READS])
def test_broken_read_files(run_cli, adir, tmp_path, name, words, procs):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    write_marker(out, "analyze")  # an earlier output of primo analyze, which --overwrite replaces
    res, stdout, err = run_cli(["analyze", "--pool", adir / "database_seqs.csv.gz",
                                adir / "reads_R1.fastq.gz", adir / name, "--single-end", "-o", out,
                                "-j", procs, "--overwrite"])
    assert res.exit_code == 1
    assert isinstance(res.error, DataError)
    line = err.strip()
    assert "\n" not in line and line.startswith("primo analyze: error:")
    for w in words:
        assert w in line, (w, line)
    # the previous output is untouched and no temporary directory is left behind
    assert sorted(p.name for p in out.iterdir()) == [".primo-output.json", "old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("procs", PROCS)
def test_pool_that_does_not_match(run_cli, adir, tmp_path, procs):
    out = tmp_path / "out"
    args = ["analyze", "--pool", adir / "other_pool.csv.gz", adir / "reads_R1.fastq.gz", "-o", out,
            "-j", procs]
    res, _, err = run_cli(args)
    assert res.exit_code == 1 and "pool does not match the reads" in err
    assert "--allow-low-yield" in err and "reads with the internal primer" in err
    assert not out.exists()
    res, _, err = run_cli(args + ["--allow-low-yield"])
    assert res.exit_code == 0, err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["counted"] == 0 and stats["reads_by_reason"]["not_in_pool"] > 0


@pytest.mark.parametrize("procs", PROCS)
def test_mates_out_of_sync(run_cli, adir, tmp_path, procs):
    recs = _records(adir / "reads_R2.fastq.gz")
    shuffled = recs[1:] + recs[:1]
    r2 = tmp_path / "x_R2.fastq.gz"
    with gzip.open(r2, "wt") as fh:
        fh.write("".join(f"@{n}\n{s}\n+\n{q}\n" for n, s, q in shuffled))
    r1 = tmp_path / "x_R1.fastq.gz"
    shutil.copy(adir / "reads_R1.fastq.gz", r1)
    res, _, err = run_cli(["analyze", "--pool", adir / "database_seqs.csv.gz", r1, r2, "-o",
                           tmp_path / "out", "-j", procs])
    assert res.exit_code == 1 and "out of sync" in err and "x_R1.fastq.gz" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("procs", PROCS)
@pytest.mark.parametrize("name,words", [
    ("distances_unknown.csv", ["distances_unknown.csv", "line 7", "ffffffffffffffff",
                               "not a document of the pool"]),
    ("distances_partial.csv", ["distances_partial.csv", "does not cover the pool", "3 of 400"]),
])
def test_broken_distances(run_cli, adir, tmp_path, name, words, procs):
    out = tmp_path / "out"
    res, _, err = run_cli(["analyze", "--pool", adir / "database_seqs.csv.gz",
                           adir / "reads_R1.fastq.gz", "-o", out, "--distances", adir / name,
                           "-j", procs])
    assert res.exit_code == 1 and isinstance(res.error, DataError)
    for w in words:
        assert w in err, (w, err)
    assert not out.exists()


def test_same_file_twice_is_refused(adir, pool, tmp_path):
    link = tmp_path / "again.fastq.gz"
    link.symlink_to(adir / "reads_R1.fastq.gz")
    for files in ([adir / "reads_R1.fastq.gz"] * 2, [adir / "reads_R1.fastq.gz", link]):
        with pytest.raises(UsageError, match="is given twice"):
            R.count_reads(pool, files, paired=False, show_progress=False)


def test_library_errors_name_the_file(adir, pool):
    with pytest.raises(DataError, match=r"malformed_plus\.fastq, line 11, record 3"):
        R.count_reads(pool, [adir / "malformed_plus.fastq"], paired=False, show_progress=False)
    with pytest.raises(UsageError, match="does not exist"):
        R.count_reads(pool, [adir / "missing.fastq"], show_progress=False)


def test_dask_local_cluster_matches_serial(run_cli, adir, pool, tmp_path):
    distributed = pytest.importorskip("distributed")
    from primo.parallel import SerialMapper

    files = [adir / "reads_R1.fastq.gz", adir / "reads_R2.fastq.gz"]
    serial = R.count_reads(pool, files, mapper=SerialMapper(), chunksize=64 * 1024,
                           show_progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        res, _, err = run_cli(["analyze", "--pool", adir / "database_seqs.csv.gz", *files,
                               "-o", tmp_path / "out", "--scheduler", cluster.scheduler_address,
                               "--chunk-bytes", "64K"])
    assert res.exit_code == 0, err
    back = R.ReadCounts.read(tmp_path / "out" / "counts.csv.gz")
    assert (back.counts == serial.counts).all()
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["mapper"].startswith("dask") and stats["fragments"] == serial.stats["fragments"]
