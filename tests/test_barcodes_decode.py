"""Bulk barcode decoder: round trips, exhaustive symbol errors and erasures, pool rules, agreement
with the per-codeword reedsolo reference."""

import itertools

import numpy as np
import pytest

from primo.barcodes import BarcodeScheme
from primo.barcodes.decode import (
    AMBIGUOUS, BAD_CHARACTERS, BAD_LENGTH, CORRECTED_ERASURE, CORRECTED_ERROR, EXACT, NOT_IN_POOL,
    POOL_RESOLVED, STATUS_NAMES, TOO_DISTANT, UNCORRECTABLE, BarcodeDecoder, DecodeResult,
    PoolTable, as_barcode_bytes, decode_reference)
from primo.errors import DataError, UsageError

PUBLISHED = "CTGATAGTAGATCATAGATGACACGATGAT"
POOL_SIZE = 1_600_000
BASES = np.frombuffer(b"ACGT", np.uint8)


@pytest.fixture(scope="module")
def scheme():
    return BarcodeScheme()


@pytest.fixture(scope="module")
def plain(scheme):
    return BarcodeDecoder(scheme)


@pytest.fixture(scope="module")
def pooled(scheme):
    return BarcodeDecoder(scheme, pool_indices=np.arange(POOL_SIZE))


def _bytes(scheme, idx):
    return scheme.encode_bytes(idx).view(np.uint8).reshape(len(idx), 30).copy()


def _non_codewords(scheme, rng, n):
    """n random 5-mers (ACGT) outside the codebook."""
    cb = set(scheme.codebook)
    out = []
    while len(out) < n:
        w = "".join(rng.choice(list("ACGT"), 5))
        if w not in cb:
            out.append(w)
    return out


def _mutate(b, k, rng):
    """k substitutions at distinct positions per row (uint8 N x 30)."""
    b = b.copy()
    if k == 0:
        return b
    code = np.zeros(256, np.uint8)
    code[BASES] = np.arange(4)
    pos = np.argsort(rng.random(b.shape), axis=1)[:, :k]
    r = np.arange(len(b))[:, None]
    b[r, pos] = BASES[(code[b[r, pos]] + rng.integers(1, 4, pos.shape)) % 4]
    return b


# ---- basics --------------------------------------------------------------------------------
def test_published_vector(scheme, plain, pooled):
    for dec in (plain, BarcodeDecoder(scheme, pool_indices=[5, 1_600_042])):
        r = dec.decode([PUBLISHED])
        assert r.index.tolist() == [1_600_042] and r.status.tolist() == [EXACT]
        assert r.id.tolist() == [BarcodeScheme().ids_of([1_600_042])[0]]
        assert r.distance.tolist() == [0]
    # document 1,600,042 is not among 0 .. 1,599,999
    assert pooled.decode([PUBLISHED]).status.tolist() == [NOT_IN_POOL]


def test_round_trip_random_indices_all_input_forms(scheme, plain):
    rng = np.random.default_rng(1)
    idx = rng.integers(0, scheme.n_ids, 5000)
    s30 = scheme.encode_bytes(idx)
    forms = [s30, s30.astype("U30"), s30.view(np.uint8).reshape(-1, 30),
             [x.decode() for x in s30.tolist()], s30.tolist(),
             [x.decode().lower() for x in s30.tolist()], np.array(s30.tolist(), dtype=object)]
    for form in forms:
        r = plain.decode(form)
        assert (r.index == idx).all() and (r.status == EXACT).all()
        assert r.counts()["exact"] == len(idx)


def test_chunked_decoding_matches(scheme):
    rng = np.random.default_rng(2)
    b = _mutate(_bytes(scheme, rng.integers(0, POOL_SIZE, 3000)), 2, rng)
    pool = np.arange(POOL_SIZE)
    whole = BarcodeDecoder(scheme, pool_indices=pool).decode(b)
    parts = BarcodeDecoder(scheme, pool_indices=pool, chunksize=97).decode(b)
    for f in ("index", "id", "status", "distance"):
        assert (getattr(whole, f) == getattr(parts, f)).all()


def test_empty_input(plain):
    r = plain.decode([])
    assert len(r) == 0 and sum(r.counts().values()) == 0
    assert len(DecodeResult.concatenate([])) == 0


# ---- exhaustive single-symbol errors and erasure pairs ------------------------------------
def test_every_single_symbol_error_is_corrected(scheme, plain, pooled):
    rng = np.random.default_rng(3)
    idx = rng.integers(0, POOL_SIZE, 40)
    cb = np.frombuffer("".join(scheme.codebook).encode(), np.uint8).reshape(64, 5)
    cws = scheme.codewords_of_ids(scheme.ids_of(idx))
    rows, truth = [], []
    for i, cw in zip(idx, cws):
        base = _bytes(scheme, [i])[0]
        for pos in range(6):
            for v in range(64):
                if v == cw[pos]:
                    continue
                b = base.copy()
                b[5 * pos:5 * pos + 5] = cb[v]
                rows.append(b)
                truth.append(i)
    rows, truth = np.array(rows), np.array(truth)
    assert len(rows) == 40 * 6 * 63
    d = (rows != _bytes(scheme, truth)).sum(1)  # bases changed by the symbol error (1..5)
    for dec in (plain, BarcodeDecoder(scheme, max_distance=None)):
        r = dec.decode(rows)
        cap = dec.max_distance if dec.max_distance is not None else 5
        assert (r.status[d <= cap] == CORRECTED_ERROR).all()
        assert (r.index[d <= cap] == truth[d <= cap]).all()
        assert (r.distance[d <= cap] == d[d <= cap]).all()
        assert (r.status[d > cap] == TOO_DISTANT).all()
    # with a pool, a symbol error that is one base substitution is always corrected; one that
    # changes more bases may lose to a pool document fewer substitutions away (maximum likelihood)
    r = pooled.decode(rows)
    assert (r.status[d == 1] == CORRECTED_ERROR).all() and (r.index[d == 1] == truth[d == 1]).all()
    two = d == 2
    assert set(np.unique(r.status[two])) <= {CORRECTED_ERROR, AMBIGUOUS}
    assert (r.index[two & r.accepted] == truth[two & r.accepted]).all()
    assert (r.status[two] == CORRECTED_ERROR).mean() > 0.98
    kept = r.status == CORRECTED_ERROR
    assert (r.index[kept] == truth[kept]).all()
    assert (r.accepted & (r.index != truth)).mean() < 0.02


def test_every_erasure_single_and_pair_is_corrected(scheme, plain, pooled):
    rng = np.random.default_rng(4)
    idx = rng.integers(0, POOL_SIZE, 30)
    rows, truth, expect_d = [], [], []
    for i in idx:
        base = scheme.encode([i])[0]
        for k in (1, 2):
            for pos in itertools.combinations(range(6), k):
                for style in ("sub", "N"):
                    b = list(base)
                    d = 0
                    for p in pos:
                        word = base[5 * p:5 * p + 5]
                        if style == "N":
                            j = int(rng.integers(0, 5))
                            new = word[:j] + "N" + word[j + 1:]
                        else:
                            # a one-base substitution that leaves the codebook
                            while True:
                                j = int(rng.integers(0, 5))
                                c = "ACGT"[int(rng.integers(0, 4))]
                                new = word[:j] + c + word[j + 1:]
                                if new != word and new not in scheme.codebook:
                                    break
                            d += 1
                        b[5 * p:5 * p + 5] = new
                    rows.append("".join(b))
                    truth.append(i)
                    expect_d.append(d)
    truth, expect_d = np.array(truth), np.array(expect_d)
    assert len(rows) == 30 * (6 + 15) * 2
    for dec in (plain, pooled):
        r = dec.decode(rows)
        assert (r.status == CORRECTED_ERASURE).all()
        assert (r.index == truth).all()
        assert (r.distance == expect_d).all()  # N is not counted as a substitution


def test_three_erasures_need_the_pool(scheme, plain, pooled):
    bc = list(PUBLISHED)
    for p in (0, 2, 5):
        bc[5 * p + 2] = "N"
    bc = "".join(bc)
    assert plain.decode([bc]).status.tolist() == [UNCORRECTABLE]
    r = BarcodeDecoder(scheme, pool_indices=[1_600_042, 7, 99]).decode([bc])
    assert r.status.tolist() == [POOL_RESOLVED] and r.index.tolist() == [1_600_042]
    assert r.distance.tolist() == [0]
    # four erasures: rejected even with a pool
    bc4 = bc[:5] + "NNNNN" + bc[10:]
    assert pooled.decode([bc4]).status.tolist() == [UNCORRECTABLE]


# ---- pool rules ----------------------------------------------------------------------------
def test_pool_rejects_documents_not_in_it(scheme, pooled, plain):
    outside = scheme.encode([POOL_SIZE + 5, 16_000_000])
    r = pooled.decode(outside)
    assert r.status.tolist() == [NOT_IN_POOL, NOT_IN_POOL] and (r.index == -1).all()
    assert (plain.decode(outside).status == EXACT).all()
    # an ID that no document can have (2**24 - 1) is not in any pool
    cw = scheme.codewords_of_ids([2**24 - 1])
    bc = scheme.barcodes_of_codewords(cw)
    assert plain.decode(bc).status.tolist() == [NOT_IN_POOL]


def test_pool_resolves_one_error_plus_one_erasure(scheme, plain):
    rng = np.random.default_rng(5)
    cb = scheme.codebook
    idx = rng.integers(0, POOL_SIZE, 200)
    rows = []
    for i in idx:
        bc = scheme.encode([i])[0]
        cw = scheme.codewords_of_ids(scheme.ids_of([i]))[0]
        p, q = rng.choice(6, 2, replace=False)
        # position p: another codebook word one base away (an undetected symbol error)
        word = bc[5 * p:5 * p + 5]
        near = [w for w in cb if sum(a != b for a, b in zip(w, word)) == 1]
        other = near[rng.integers(len(near))] if near else cb[(cw[p] + 1) % 64]
        # position q: an N (erasure)
        wq = bc[5 * q:5 * q + 5]
        bc = list(bc)
        bc[5 * p:5 * p + 5] = other
        bc[5 * q:5 * q + 5] = "N" + wq[1:]
        rows.append("".join(bc))
    assert (plain.decode(rows).status == UNCORRECTABLE).all()
    pool = np.unique(np.concatenate([idx, rng.integers(0, POOL_SIZE, 20000)]))
    r = BarcodeDecoder(scheme, pool_indices=pool).decode(rows)
    ok = r.accepted
    assert (r.index[ok] == idx[ok]).all()          # never wrong
    assert ok.mean() > 0.9
    assert set(np.unique(r.status[ok])) == {POOL_RESOLVED}
    assert set(np.unique(r.status[~ok])) <= {AMBIGUOUS, TOO_DISTANT}


def test_ambiguous_when_two_pool_documents_fit_equally(scheme):
    # three unreadable 5-mers: every codeword matching the other three symbols is a candidate
    a = 123_456
    cw = scheme.codewords_of_ids(scheme.ids_of([a]))[0]
    # another codeword agreeing with cw on positions 1, 3, 4 (vary position 0, solve 2 and 5)
    dec = BarcodeDecoder(scheme)
    cb = scheme.codebook
    others = []
    for v in range(64):
        if v == cw[0]:
            continue
        word = list(scheme.barcodes_of_codewords(cw[None])[0].decode())
        word[0:5] = cb[v]
        word[10:15] = "NNNNN"
        word[25:30] = "NNNNN"
        r = dec.decode(["".join(word)])
        if r.accepted[0]:
            others.append(int(r.index[0]))
    assert others, "some codewords agree with cw on positions 0, 1, 3, 4"
    b = others[0]
    received = list(scheme.encode([a])[0])
    for p in (0, 2, 5):
        received[5 * p:5 * p + 5] = "NNNNN"
    received = "".join(received)
    r = BarcodeDecoder(scheme, pool_indices=[a, b]).decode([received])
    assert r.status.tolist() == [AMBIGUOUS] and r.index.tolist() == [-1]
    r = BarcodeDecoder(scheme, pool_indices=[a]).decode([received])
    assert r.status.tolist() == [POOL_RESOLVED] and r.index.tolist() == [a]
    ref = decode_reference([received], scheme, pool_indices=[a, b])
    assert ref.status.tolist() == [AMBIGUOUS]


def test_two_erasure_answers_far_from_the_read_are_too_distant(scheme):
    bc = list(PUBLISHED)
    for p in (1, 4):  # two 5-mers replaced by a homopolymer (never a codebook word)
        bc[5 * p:5 * p + 5] = "GGGGG"
    bc = "".join(bc)
    d = sum(a != b for a, b in zip(bc, PUBLISHED))
    assert d > 3
    r = BarcodeDecoder(scheme).decode([bc])
    assert r.status.tolist() == [TOO_DISTANT] and r.index.tolist() == [-1]
    r = BarcodeDecoder(scheme, max_distance=None).decode([bc])
    assert r.status.tolist() == [CORRECTED_ERASURE] and r.index.tolist() == [1_600_042]
    assert r.distance.tolist() == [d]


def test_pool_table_is_small_and_exact(scheme):
    rng = np.random.default_rng(6)
    pool = rng.choice(POOL_SIZE, 100_000, replace=False)
    t = PoolTable(scheme, pool)
    ids = scheme.ids_of(pool)
    assert t.contains(ids).all() and (t.index_of(ids) == pool).all()
    others = scheme.ids_of(np.setdiff1d(np.arange(200_000), pool)[:5000])
    assert not t.contains(others).any() and (t.index_of(others) == -1).all()
    assert not t.contains(np.array([-1, 2**24, 2**30])).any()
    full = PoolTable(scheme, np.arange(POOL_SIZE))
    assert full.nbytes < 12 * 2**20  # 1.6 M documents: ~9 MB


def test_pool_indices_out_of_range(scheme):
    with pytest.raises(DataError, match="outside"):
        BarcodeDecoder(scheme, pool_indices=[0, 2**24 - 1])


# ---- bad input -----------------------------------------------------------------------------
def test_bad_lengths_and_characters_are_statuses(plain):
    good = PUBLISHED
    r = plain.decode([good, good[:-1], good + "A", "", good[:-1] + "X", good[:5] + "-" + good[6:],
                      good[:-1] + "é", good[:-1] + "n"])
    assert [STATUS_NAMES[s] for s in r.status] == [
        "exact", "bad_length", "bad_length", "bad_length", "bad_characters", "bad_characters",
        "bad_characters", "corrected_erasure"]
    s = np.array([good.encode(), good[:20].encode()], dtype="S30")
    assert plain.decode(s).status.tolist() == [EXACT, BAD_LENGTH]
    s = np.array([good.encode(), b"A" * 31], dtype="S31")
    assert plain.decode(s).status.tolist() == [EXACT, BAD_LENGTH]
    assert plain.decode(np.array([good[:29]], dtype="S29")).status.tolist() == [BAD_LENGTH]
    embedded_nul = np.array([good[:10].encode() + b"\0" + good[11:].encode()], dtype="S30")
    assert plain.decode(embedded_nul).status.tolist() == [BAD_CHARACTERS]


def test_bad_arrays_are_usage_errors(plain):
    with pytest.raises(UsageError, match="N x 30"):
        plain.decode(np.zeros((3, 29), np.uint8))
    with pytest.raises(UsageError, match="dtype"):
        plain.decode(np.zeros(3, np.float64))
    with pytest.raises(UsageError):
        BarcodeDecoder(max_distance=-1)
    with pytest.raises(UsageError, match="str or bytes"):
        plain.decode([PUBLISHED, None])
    assert as_barcode_bytes("A" * 30)[0].shape == (1, 30)
    # mixed str and bytes are fine
    assert (plain.decode([PUBLISHED, PUBLISHED.encode()]).status == EXACT).all()


# ---- other schemes -------------------------------------------------------------------------
def test_other_seed_and_codebook(plain):
    rng = np.random.default_rng(7)
    cb = list(BarcodeScheme().codebook)
    rng.shuffle(cb)
    s = BarcodeScheme(seed=7, codebook=tuple(cb))
    dec = BarcodeDecoder(s)
    idx = rng.integers(0, s.n_ids, 2000)
    b = _mutate(s.encode_bytes(idx).view(np.uint8).reshape(-1, 30), 1, rng)
    r = dec.decode(b)
    assert (r.index == idx).all()
    ref = decode_reference([x.tobytes() for x in b[:300]], s)
    assert (ref.index == idx[:300]).all()
    # the published decoder reads these as other documents or rejects them
    assert (plain.decode(s.encode_bytes(idx)).index != idx).mean() > 0.99


# ---- agreement with the reedsolo reference ------------------------------------------------
def _random_inputs(scheme, n, rng):
    """Barcodes with 0..4 substitutions, N's, lowercase, and random 30-mers (garbage)."""
    idx = rng.integers(0, POOL_SIZE, n)
    b = _bytes(scheme, idx)
    k = rng.integers(0, 6, n)  # 5 = garbage
    for kk in range(5):
        rows = np.flatnonzero(k == kk)
        b[rows] = _mutate(b[rows], kk, rng)
    g = np.flatnonzero(k == 5)
    b[g] = BASES[rng.integers(0, 4, (len(g), 30))]
    nrows = np.flatnonzero(rng.random(n) < 0.05)
    b[nrows, rng.integers(0, 30, len(nrows))] = ord("N")
    low = np.flatnonzero(rng.random(n) < 0.02)
    b[low] = b[low] | 0x20  # lowercase
    return b, idx


def _assert_same(fast, ref):
    for f in ("status", "index", "id", "distance"):
        a, b = getattr(fast, f), getattr(ref, f)
        bad = np.flatnonzero(a != b)
        assert len(bad) == 0, f"{f} differs at {bad[:5]}: {a[bad[:5]]} vs {b[bad[:5]]}"


def test_agrees_with_reedsolo_reference_on_1e5_inputs(scheme, plain):
    rng = np.random.default_rng(8)
    b, _ = _random_inputs(scheme, 100_000, rng)
    fast = plain.decode(b)
    ref = decode_reference([r.tobytes() for r in b], scheme)
    _assert_same(fast, ref)
    c = fast.counts()
    # the inputs exercise every plain-RS outcome
    for name in ("exact", "corrected_error", "corrected_erasure", "uncorrectable", "too_distant"):
        assert c[name] > 100, c


def test_agrees_with_reedsolo_reference_with_a_pool(scheme, pooled):
    rng = np.random.default_rng(9)
    b, _ = _random_inputs(scheme, 3000, rng)
    fast = pooled.decode(b)
    ref = decode_reference([r.tobytes() for r in b], scheme, pool_indices=np.arange(POOL_SIZE))
    _assert_same(fast, ref)
    c = fast.counts()
    for name in ("exact", "corrected_error", "corrected_erasure", "pool_resolved",
                 "uncorrectable", "not_in_pool", "too_distant"):
        assert c[name] > 0, c
    # and without the distance cap
    fast = BarcodeDecoder(scheme, pool_indices=np.arange(POOL_SIZE), max_distance=None).decode(b)
    ref = decode_reference([r.tobytes() for r in b], scheme, pool_indices=np.arange(POOL_SIZE),
                           max_distance=None)
    _assert_same(fast, ref)
    assert fast.counts()["ambiguous"] > 0


def test_reference_statuses_for_bad_input(scheme):
    r = decode_reference([PUBLISHED[:29], PUBLISHED[:29] + "X", PUBLISHED], scheme)
    assert r.status.tolist() == [BAD_LENGTH, BAD_CHARACTERS, EXACT]


# ---- recovery targets (the figures themselves come from experiments/barcode_recovery.py) -------
def test_one_substitution_always_recovered_two_mostly(scheme, pooled):
    rng = np.random.default_rng(10)
    idx = rng.integers(0, POOL_SIZE, 20_000)
    clean = _bytes(scheme, idx)
    r1 = pooled.decode(_mutate(clean, 1, rng))
    assert (r1.index == idx).all()
    r2 = pooled.decode(_mutate(clean, 2, rng))
    assert (r2.index == idx).mean() >= 0.99
    assert (r2.accepted & (r2.index != idx)).mean() <= 0.001
    garbage = BASES[rng.integers(0, 4, (20_000, 30))]
    assert pooled.decode(garbage).accepted.mean() <= 0.001


@pytest.mark.parametrize("params", [dict(fcr=0), dict(prim=0x43, generator=2, fcr=3)])
def test_other_rs_parameters_agree_with_reference(params):
    s = BarcodeScheme(**params)
    rng = np.random.default_rng(11)
    b, idx = _random_inputs(s, 5000, rng)
    _assert_same(BarcodeDecoder(s).decode(b), decode_reference([r.tobytes() for r in b], s))
    clean = s.encode_bytes(idx).view(np.uint8).reshape(-1, 30)
    assert (BarcodeDecoder(s).decode(_mutate(clean, 1, rng)).index == idx).all()


def test_decoder_pickles_small_for_workers(scheme):
    import pickle

    dec = BarcodeDecoder(scheme, pool_indices=np.arange(1000))
    dec.decode([PUBLISHED])
    blob = pickle.dumps(dec)
    assert len(blob) < 4 * 2**20  # no tables, no permutation
    back = pickle.loads(blob)
    bc = scheme.encode_bytes(np.arange(0, 2000, 7))
    a, b = dec.decode(bc), back.decode(bc)
    assert (a.index == b.index).all() and (a.status == b.status).all()
