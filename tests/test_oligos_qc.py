import numpy as np
import pytest

from primo import constants as C
from primo.barcodes import BarcodeScheme
from primo.dna import encode_seqs, longest_homopolymer
from primo.errors import UsageError
from primo.oligos import OligoLayout, PoolQC, QCConfig, check_sequences
from primo.oligos.qc import KeyIndex, oligo_metrics, row_keys

LAY = OligoLayout()


def _rc(s):
    return "".join({"A": "T", "C": "G", "G": "C", "T": "A"}[c] for c in reversed(s))


def _balanced_feature(rng):
    """A random 80-nt feature with GC 0.5 and no run longer than 3 (passes every check)."""
    while True:
        f = "".join(rng.choice(list("ACGT"), 80))
        if (f.count("G") + f.count("C")) == 40 and longest_homopolymer(f) <= 3:
            return f


def _oligos(feats, start=0):
    bcs = BarcodeScheme().encode(np.arange(start, start + len(feats)))
    return LAY.oligos(list(bcs), feats)


def _checks(report):
    return sorted(k for k, v in report.counts.items() if v)


def test_clean_oligos_pass():
    rng = np.random.default_rng(0)
    seqs = _oligos([_balanced_feature(rng) for _ in range(30)])
    rep = check_sequences(seqs)
    assert not rep.failed and rep.n_documents == 30 and rep.flags == []
    assert rep.summary()["passed"] is True
    assert 0.4 < rep.stats["gc_mean"] < 0.6


def test_planted_problems_are_flagged():
    rng = np.random.default_rng(1)
    feats = [_balanced_feature(rng) for _ in range(10)]
    # 1: homopolymer of 9 in the feature
    feats[1] = feats[1][:30] + "A" * 9 + feats[1][39:]
    # 2: AT-only feature without long runs: the primers and barcode keep the whole oligo at GC 0.27,
    #    but its 50-nt windows in the feature have GC 0
    feats[2] = ("ATTA" * 20)
    # 3: high GC overall
    feats[3] = ("GCCG" * 20)
    # 4: RP* 3' end (10 nt) inside the feature: a PCR reverse-primer site
    site = _rc(C.RP)[-10:]
    feats[4] = feats[4][:20] + site + feats[4][30:]
    # 5: the FP 3' end in the opposite orientation
    feats[5] = feats[5][:50] + _rc(C.FP[-10:]) + feats[5][60:]
    # 6: one half GC-rich, one half AT-rich: window GC extreme and spread
    feats[6] = "GCGGCCGCGGCCGCCGCGGCCGGCGGCCGCGCCGGCGG" + "ATTAATATTAATTATAATTAATTATATAATTATAATTAAT" + "AC"
    seqs = _oligos(feats)
    seqs.append(seqs[7])  # 10: duplicate sequence (and barcode) of document 7
    ids = [f"d{i}" for i in range(len(seqs))]
    rep = check_sequences(seqs, image_ids=ids)
    by_doc = {}
    for f in rep.flags:
        by_doc.setdefault(f.index, set()).add(f.check)
    assert by_doc[1] == {"homopolymer"}
    assert "window_gc" in by_doc[2] and "gc" not in by_doc[2]
    assert "gc" in by_doc[3]
    assert by_doc[4] == {"primer_site"}
    assert by_doc[5] == {"primer_site"}
    assert {"window_gc", "window_gc_spread"} <= by_doc[6]
    assert by_doc[10] == {"duplicate_sequence", "duplicate_barcode"}
    assert 0 not in by_doc and 7 not in by_doc and 8 not in by_doc
    f4 = next(f for f in rep.flags if f.index == 4)
    assert f4.value == f"RP* (its 3' end, 10 nt) in feature at {67 + 20}"
    f10 = next(f for f in rep.flags if f.index == 10 and f.check == "duplicate_sequence")
    assert f10.value == "same sequence as document 7" and f10.image_id == "d10"
    hp = next(f for f in rep.flags if f.index == 1)
    assert hp.value == "9" and hp.limit == "<= 6"
    assert rep.failed and rep.n_failed == 7
    assert set(rep.failed_indices.tolist()) == {1, 2, 3, 4, 5, 6, 10}
    msg = rep.message()
    assert "7 of 11 oligos failed QC" in msg and "\n" not in msg


def test_thresholds_are_configurable():
    rng = np.random.default_rng(2)
    f = _balanced_feature(rng)
    f = f[:10] + "CCCCCCC" + f[17:]
    seqs = _oligos([f])
    assert "homopolymer" in _checks(check_sequences(seqs, config=QCConfig(min_pool_size=1)))
    rep = check_sequences(seqs, config=QCConfig(max_homopolymer=8, min_pool_size=1))
    assert not rep.failed
    at_rich = _oligos(["ATTA" * 20])
    assert "gc" in _checks(check_sequences(at_rich, config=QCConfig(gc_min=0.3, min_pool_size=1)))
    # a shorter primer match finds more sites
    cfg = QCConfig(primer_match=4, min_pool_size=1)
    assert "primer_site" in _checks(check_sequences(seqs, config=cfg))


def test_pool_limits():
    rng = np.random.default_rng(3)
    one = _oligos([_balanced_feature(rng)])
    rep = check_sequences(one)
    assert rep.failed and rep.n_failed == 0
    assert "needs at least 2" in rep.pool_problems[0]
    three = _oligos([_balanced_feature(rng) for _ in range(3)])
    rep = check_sequences(three, config=QCConfig(max_pool_size=2))
    assert "takes at most 2" in rep.pool_problems[0]
    long_lay = OligoLayout(feature_length=260)
    rep = check_sequences([], layout=long_lay)
    assert any("makes 20..300 nt" in p for p in rep.pool_problems)


def test_length_and_alphabet_of_raw_sequences():
    rng = np.random.default_rng(4)
    good = _oligos([_balanced_feature(rng) for _ in range(2)])
    seqs = [good[0], good[1][:-1], good[1][:100] + "N" + good[1][101:]]
    rep = check_sequences(seqs, image_ids=["a", "b", "c"])
    flags = {(f.image_id, f.check, f.value) for f in rep.flags}
    assert flags == {("b", "length", "164"), ("c", "alphabet", "N")}
    assert rep.n_documents == 3


def test_config_validation_and_dict():
    with pytest.raises(UsageError, match="gc_min"):
        QCConfig(gc_min=1.5)
    with pytest.raises(UsageError, match="primer_match"):
        QCConfig(primer_match=40)
    c = QCConfig(max_homopolymer=5)
    assert QCConfig.from_dict(c.to_dict()) == c


# ---- fast code against simple reference implementations ----------------------------------------
def _ref_metrics(seq, k):
    gc = [c in "GC" for c in seq]
    windows = [sum(gc[i:i + 50]) / 50 for i in range(len(seq) - 49)]
    kmers = set()
    for p in (C.FP, C.IP, C.RP, _rc(C.FP), _rc(C.IP), _rc(C.RP)):
        kmers |= {p[-k:], _rc(p[-k:])}
    hit = any(seq[a:b][i:i + k] in kmers
              for a, b in ((18, 48), (67, 147)) for i in range(b - a - k + 1))
    return sum(gc) / len(seq), min(windows), max(windows), longest_homopolymer(seq), hit


def test_vectorised_metrics_match_reference():
    rng = np.random.default_rng(5)
    feats = ["".join(rng.choice(list("ACGT"), 80, p=p)) for p in
             ([.25] * 4, [.4, .1, .1, .4], [.1, .4, .4, .1]) for _ in range(60)]
    seqs = _oligos(feats)
    k = 5  # short, so that primer sites occur
    m = oligo_metrics(encode_seqs(seqs), LAY, QCConfig(primer_match=k))
    for i, s in enumerate(seqs):
        gc, wmin, wmax, hp, hit = _ref_metrics(s, k)
        assert m["gc"][i] == pytest.approx(gc)
        assert m["window_gc_min"][i] == pytest.approx(wmin)
        assert m["window_gc_max"][i] == pytest.approx(wmax)
        assert m["homopolymer"][i] == hp
        assert bool(m["primer_region"][i]) == hit
    assert 0 < (m["primer_region"] > 0).sum() < len(seqs)


def test_key_index_matches_python_reference():
    rng = np.random.default_rng(6)
    idx, seen = KeyIndex(), {}
    rec = 0
    for _ in range(8):
        keys = rng.integers(0, 300, rng.integers(0, 120)).astype(np.uint64)
        recs = np.arange(rec, rec + len(keys))
        got = idx.add(keys, recs)
        for kk, r, g in zip(keys.tolist(), recs.tolist(), got.tolist()):
            assert g == seen.get(kk, -1)
            seen.setdefault(kk, r)
        rec += len(keys)
    assert len(idx) == len(seen)


def test_row_keys_exact_for_barcodes_and_distinct_for_oligos():
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 4, (2000, 30)).astype(np.uint8)
    k = row_keys(codes)
    packed = [int("".join(map(str, r)), 4) for r in codes]
    assert k.tolist() == packed
    long_codes = rng.integers(0, 4, (5000, 165)).astype(np.uint8)
    long_codes[10] = long_codes[3]
    lk = row_keys(long_codes)
    assert lk[10] == lk[3] and len(np.unique(lk)) == 4999


def test_pool_qc_accumulates_across_chunks():
    rng = np.random.default_rng(8)
    feats = [_balanced_feature(rng) for _ in range(12)]
    seqs = _oligos(feats)
    seqs[9] = seqs[2]
    whole = check_sequences(seqs)
    chunked = check_sequences(seqs, chunksize=4)
    assert whole.counts == chunked.counts
    assert whole.flags == chunked.flags
    qc = PoolQC(LAY, max_flags=0)
    qc.check(encode_seqs(seqs), np.arange(12), [str(i) for i in range(12)])
    rep = qc.finish()
    assert rep.flags == [] and rep.flags_truncated and rep.n_failed == 1
