import numpy as np
import pytest
import reedsolo

from primo.barcodes import BarcodeScheme, default_codebook
from primo.errors import DataError, UsageError


def test_published_vector():
    assert BarcodeScheme().encode([1600042])[0] == "CTGATAGTAGATCATAGATGACACGATGAT"


def test_codebook_properties():
    cb = default_codebook()
    assert len(cb) == 64 and len(set(cb)) == 64
    for w in cb:
        assert len(w) == 5 and w[0] in "AC" and w[-1] in "GT"
        assert all(w[i] != w[i + 1] for i in range(4))


def test_encode_matches_reedsolo_on_random_indices():
    s = BarcodeScheme()
    rs = reedsolo.RSCodec(nsym=2, nsize=6, c_exp=6, prim=0x61, generator=3, fcr=1)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, s.n_ids, 2000)
    ids = s.ids_of(idx)
    cws = s.codewords_of_ids(ids)
    for i, cw in zip(ids, cws):
        data = bytearray(int(i) >> (6 * k) & 63 for k in range(4))
        assert list(rs.encode(data)) == list(cw)
    # round trip index -> ID -> index
    assert (s.indices_of(ids) == idx).all()
    assert (s.ids_of_codewords(cws) == ids).all()
    bc = s.encode(idx)
    assert all(len(b) == 30 for b in bc)


def test_index_out_of_range():
    with pytest.raises(DataError, match="outside"):
        BarcodeScheme().encode([2**24 - 1])
    with pytest.raises(DataError):
        BarcodeScheme().encode([-1])


def test_scheme_round_trips_through_manifest_dict():
    s = BarcodeScheme(seed=7)
    assert BarcodeScheme.from_dict(s.to_dict()) == s
    assert BarcodeScheme.from_dict(None).is_published
    assert (s.encode([5]) != BarcodeScheme().encode([5])).any()


def test_bad_codebook():
    with pytest.raises(UsageError):
        BarcodeScheme(codebook=("ACGTA",) * 64)
