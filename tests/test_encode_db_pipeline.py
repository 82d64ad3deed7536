"""encode-db reads ahead and writes behind in threads (primo.workflows.encode_db): the pool must be
byte for byte the one the plain loop writes, and an error in any stage must stop every stage,
leave nothing written and no thread running."""

import json
import threading

import h5py
import numpy as np
import pytest

from primo.errors import DataError
from primo.features.store import FeatureStore, write_features
from primo.workflows import encode_db as E

POOL_FILES = ["database_seqs.csv.gz", "twist_order.csv", "barcode_order.csv.gz", "qc_flags.csv.gz"]


def _plain_pool(model, features, out, chunksize):
    """The pool written one chunk after the other, without threads (the reference)."""
    from primo.barcodes import BarcodeScheme
    from primo.oligos.layout import OligoLayout
    from primo.oligos.pool import PoolWriter

    layout = OligoLayout.from_dict(model.card.get("layout"))
    with FeatureStore.open(features) as store:
        with PoolWriter(out, layout=layout, scheme=BarcodeScheme(), qc="warn", source=features,
                        command="encode-db") as w:
            for ids, X in store.iter_chunks(chunksize=chunksize):
                w.add(ids, model.encode_features(X))


@pytest.mark.parametrize("chunksize", [7, 50_000])
def test_pool_is_byte_identical_to_the_plain_loop(tiny_workspace, tmp_path, chunksize):
    from primo.model_dir import load_model

    model = load_model(tiny_workspace.model)
    before = threading.active_count()
    res = E.encode_database(model, tiny_workspace.features, tmp_path / "new", qc="warn",
                            chunksize=chunksize, progress=False)
    _plain_pool(model, tiny_workspace.features, tmp_path / "ref", chunksize)
    assert res.n_documents == 120
    for name in POOL_FILES:
        assert (tmp_path / "new" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    qc = [json.loads((tmp_path / d / "qc_summary.json").read_text()) for d in ("new", "ref")]
    for q in qc:
        q.pop("provenance", None)
    assert qc[0] == qc[1]
    assert threading.active_count() == before


def test_bad_row_in_a_later_chunk_stops_everything(tiny_workspace, tmp_path):
    with FeatureStore.open(tiny_workspace.features) as st:
        ids, X, meta = list(st.ids), st.read(0, st.n), st.metadata
    bad = tmp_path / "bad.h5"
    write_features(bad, ids, X, metadata=meta)
    with h5py.File(bad, "r+") as f:   # a store damaged after it was written
        f["features"][100, 3] = np.nan
    before = threading.active_count()
    with pytest.raises(DataError) as e:
        E.encode_database(tiny_workspace.model, bad, tmp_path / "pool", qc="warn", chunksize=7,
                          progress=False)
    assert ids[100] in str(e.value)
    assert not (tmp_path / "pool").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]
    assert threading.active_count() == before


def test_prefetched_keeps_order_and_raises_in_place():
    def items():
        yield from range(5)
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for x in E._prefetched(items()):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
    # closing early stops the reader thread
    before = threading.active_count()
    g = E._prefetched(iter(range(1000)))
    assert next(g) == 0
    g.close()
    assert threading.active_count() == before


def test_write_behind_in_order_and_errors_on_both_sides():
    seen = []
    E._write_behind(lambda a, b: seen.append((a, b)), ((i, -i) for i in range(50)))
    assert seen == [(i, -i) for i in range(50)]

    def add(a):
        if a == 3:
            raise KeyError("writer failed")
        seen.append(a)

    seen.clear()
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield (i,)

    with pytest.raises(KeyError, match="writer failed"):
        E._write_behind(add, items())
    assert seen == [0, 1, 2] and len(made) < 10   # the producer stopped soon after

    def failing():
        yield (0,)
        yield (1,)
        raise DataError("reader failed")

    seen.clear()
    with pytest.raises(DataError, match="reader failed"):
        E._write_behind(lambda a: seen.append(a), failing())
    assert seen == [0, 1]   # what was handed over is written before the error surfaces
