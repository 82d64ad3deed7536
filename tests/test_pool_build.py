import csv
import gzip
import json
import shutil

import numpy as np
import pytest

from primo import constants as C
from primo.barcodes import BarcodeScheme
from primo.dna import longest_homopolymer
from primo.errors import DataError, UsageError
from primo.oligos import (OligoLayout, PoolWriter, QCConfig, build_pool, check_pool, read_pool)
from primo.parallel import get_mapper

PUBLISHED_BARCODE = "CTGATAGTAGATCATAGATGACACGATGAT"


def _feats(n, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), 80)) for _ in range(n)]


def _rows(path):
    op = gzip.open if str(path).endswith(".gz") else open
    with op(path, "rt", newline="") as fh:
        return list(csv.reader(fh))


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_published_example_barcode_inside_the_oligo(tmp_path):
    res = build_pool(["query_like"], ["ACGT" * 20], tmp_path / "pool", indices=[1_600_042],
                     qc="off")
    rows = _rows(tmp_path / "pool" / "database_seqs.csv.gz")
    assert rows[0] == ["ImageID", "Sequence"]
    seq = rows[1][1]
    assert seq == C.FP + PUBLISHED_BARCODE + C.IP + "ACGT" * 20 + C.RP
    assert seq[18:48] == PUBLISHED_BARCODE and len(seq) == 165
    assert res.report is None
    pool = read_pool(tmp_path / "pool")
    assert pool.indices.tolist() == [1_600_042] and pool.barcodes[0] == PUBLISHED_BARCODE


def test_pool_directory_contents(tmp_path):
    ids = [f"img{i}" for i in range(7)]
    feats = _feats(7)
    res = build_pool(ids, feats, tmp_path / "pool", chunksize=3, name_prefix="bee")
    d = tmp_path / "pool"
    assert sorted(p.name for p in d.iterdir()) == sorted(
        [".primo-output.json", "database_seqs.csv.gz", "twist_order.csv", "barcode_order.csv.gz", "qc_flags.csv.gz",
         "qc_summary.json", "manifest.json"])
    db = _rows(d / "database_seqs.csv.gz")
    assert db[0] == ["ImageID", "Sequence"] and [r[0] for r in db[1:]] == ids
    lay = OligoLayout()
    bcs = BarcodeScheme().encode(np.arange(7))
    assert [r[1] for r in db[1:]] == lay.oligos(list(bcs), feats)
    twist = _rows(d / "twist_order.csv")
    assert twist[0] == ["name", "sequence"]
    assert [r[0] for r in twist[1:]] == [f"bee_{i}" for i in range(7)]
    assert [r[1] for r in twist[1:]] == [r[1] for r in db[1:]]
    order = _rows(d / "barcode_order.csv.gz")
    assert order[0] == ["index", "ImageID"] and order[1:] == [[str(i), f"img{i}"] for i in range(7)]
    assert _rows(d / "qc_flags.csv.gz")[0] == ["index", "ImageID", "check", "value", "limit"]
    m = json.loads((d / "manifest.json").read_text())
    assert m["documents"] == 7 and m["counts"]["index_max"] == 6
    assert m["layout"] == lay.to_dict()
    assert m["barcodes"] == BarcodeScheme().to_dict()
    assert m["primers"]["PCR reverse (RP*)"] == "CAGGAGGTTGTTGAGGAC"
    assert m["provenance"]["primo_version"] and "command" in m["provenance"]
    assert m["qc"] == res.report.summary()
    qs = json.loads((d / "qc_summary.json").read_text())
    assert qs["documents"] == 7 and "provenance" in qs
    # no comment lines, byte-stable gzip (mtime 0)
    assert gzip.open(d / "database_seqs.csv.gz").read().startswith(b"ImageID,Sequence\n")
    assert (d / "database_seqs.csv.gz").read_bytes()[4:8] == b"\0\0\0\0"
    # a finished pool is readable like any normally created output (not 0700/0600 temp modes)
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    assert (d.stat().st_mode & 0o777) == (0o777 & ~mask)
    assert {p.stat().st_mode & 0o777 for p in d.iterdir()} == {0o666 & ~mask}


def test_read_round_trip_and_lookup(tmp_path):
    ids = [f"doc-{i}" for i in range(20)]
    feats = _feats(20, seed=1)
    idx = np.random.default_rng(2).permutation(1000)[:20]
    build_pool(ids, feats, tmp_path / "p", indices=idx)
    pool = read_pool(tmp_path / "p", chunksize=6)
    assert len(pool) == 20
    assert pool.image_ids.tolist() == ids and pool.image_ids.dtype.kind == "U"
    assert pool.indices.dtype == np.int64 and pool.indices.tolist() == idx.tolist()
    assert list(pool.features) == feats
    assert list(pool.barcodes) == list(BarcodeScheme().encode(idx))
    assert pool.layout == OligoLayout() and pool.scheme == BarcodeScheme()
    assert pool.manifest["documents"] == 20
    assert pool.index_to_image_id(int(idx[5])) == "doc-5"
    got = pool.index_to_image_id(np.array([idx[3], 5000, idx[0]]))
    assert got.tolist() == ["doc-3", "", "doc-0"]
    with pytest.raises(KeyError):
        pool.index_to_image_id(5000)
    assert pool.oligos(0, 2) == _rows(tmp_path / "p" / "database_seqs.csv.gz")[1][1:] + \
        _rows(tmp_path / "p" / "database_seqs.csv.gz")[2][1:]
    lean = read_pool(tmp_path / "p", sequences=False)
    assert lean.features is None and lean.indices.tolist() == idx.tolist()


def test_custom_primers_and_seed_are_read_back_from_the_manifest(tmp_path):
    lay = OligoLayout(fp="ACGTTGCAAGCTAGCTAG", rp="GTTCGAGCTTCAGGACTC")
    scheme = BarcodeScheme(seed=7, n_ids=100_000)
    build_pool(["a", "b", "c"], _feats(3), tmp_path / "p", layout=lay, scheme=scheme)
    pool = read_pool(tmp_path / "p")
    assert pool.layout == lay and pool.scheme == scheme and pool.indices.tolist() == [0, 1, 2]
    # the same file without its manifest does not follow the default layout
    shutil.copy(tmp_path / "p" / "database_seqs.csv.gz", tmp_path / "bare.csv.gz")
    with pytest.raises(DataError, match="line 2: sequence does not follow the layout: FP is"):
        read_pool(tmp_path / "bare.csv.gz")


def test_read_bare_published_database_file(data_dir):
    pool = read_pool(data_dir / "oligos" / "database_seqs.csv.gz")
    expected = [int(x) for x in (data_dir / "oligos" / "expected_indices.txt").read_text().split()]
    assert pool.indices.tolist() == expected
    assert pool.manifest == {}
    assert pool.index_to_image_id(1_600_042) == "img_1600042"
    assert pool.barcodes[3] == PUBLISHED_BARCODE


def test_writer_streams_chunks_with_default_and_given_indices(tmp_path):
    with PoolWriter(tmp_path / "p") as w:
        a = w.add(["a", "b"], _feats(2))
        b = w.add(["c"], _feats(1, 3), indices=[10])
        c = w.add(["d"], _feats(1, 4))
    assert a.tolist() == [0, 1] and b.tolist() == [10] and c.tolist() == [11]
    assert w.result.n_documents == 4
    assert read_pool(tmp_path / "p").indices.tolist() == [0, 1, 10, 11]
    assert w.result.manifest["counts"]["indices"] == "given"


def test_lowercase_features_are_uppercased(tmp_path):
    f = _feats(2)
    build_pool(["a", "b"], [f[0].lower(), " " + f[1] + " "], tmp_path / "p")
    assert list(read_pool(tmp_path / "p").features) == f


@pytest.mark.parametrize("ids,feats,indices,err,msg", [
    (["a", "b"], ["ACGT" * 20, "ACGN" * 20], None, DataError, "record 1: feature sequence"),
    (["a", "b"], ["ACGT" * 20, "ACGT" * 19], None, DataError, "record 1: feature sequence .* has 76 nt, expected 80"),
    (["a", "a"], ["ACGT" * 20, "TGCA" * 20], None, DataError, "record 1: duplicate ImageID 'a' \\(first at record 0\\)"),
    (["a", ""], ["ACGT" * 20, "TGCA" * 20], None, DataError, "record 1: ImageID is empty"),
    (["a", "b"], ["ACGT" * 20, "TGCA" * 20], [3, 3], DataError, "duplicate document index 3"),
    (["a", "b"], ["ACGT" * 20, "TGCA" * 20], [0, 2**24 - 1], DataError, "more documents than barcode IDs"),
    ([], [], None, DataError, "no documents"),
])
def test_bad_input_leaves_nothing_behind(tmp_path, ids, feats, indices, err, msg):
    with pytest.raises(err, match=msg) as e:
        build_pool(ids, feats, tmp_path / "p", indices=indices, chunksize=1)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "p").exists() and _leftovers(tmp_path) == []


def test_more_documents_than_ids_of_a_small_scheme(tmp_path):
    scheme = BarcodeScheme(n_ids=5)
    build_pool(list("abcde"), _feats(5), tmp_path / "ok", scheme=scheme)
    with pytest.raises(DataError, match="record 5: more documents than barcode IDs.*5 "):
        build_pool(list("abcdef"), _feats(6), tmp_path / "p", scheme=scheme)
    assert not (tmp_path / "p").exists()


def test_qc_fail_mode_writes_nothing_and_warn_mode_writes(tmp_path):
    feats = _feats(4)
    feats[2] = feats[2][:10] + "T" * 10 + feats[2][20:]
    with pytest.raises(DataError, match="1 of 4 oligos failed QC \\(homopolymer 1\\)"):
        build_pool(list("abcd"), feats, tmp_path / "p", qc="fail",
                   qc_config=QCConfig(max_homopolymer=8))
    assert not (tmp_path / "p").exists() and _leftovers(tmp_path) == []
    res = build_pool(list("abcd"), feats, tmp_path / "p", qc="warn",
                     qc_config=QCConfig(max_homopolymer=8))
    assert res.report.failed and res.report.failed_indices.tolist() == [2]
    flags = _rows(tmp_path / "p" / "qc_flags.csv.gz")
    assert flags[1] == ["2", "c", "homopolymer", str(longest_homopolymer(feats[2])), "<= 8"]
    with pytest.raises(UsageError, match="qc must be one of"):
        PoolWriter(tmp_path / "x", qc="maybe")


def test_failed_rebuild_keeps_the_old_pool(tmp_path):
    build_pool(["a", "b"], _feats(2), tmp_path / "p")
    before = (tmp_path / "p" / "database_seqs.csv.gz").read_bytes()
    with pytest.raises(DataError):
        build_pool(["a", "b", "c"], _feats(2) + ["N" * 80], tmp_path / "p")
    assert (tmp_path / "p" / "database_seqs.csv.gz").read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_writer_is_unusable_after_an_error(tmp_path):
    w = PoolWriter(tmp_path / "p")
    w.add(["a"], _feats(1))
    with pytest.raises(DataError):
        w.add(["b"], ["XYZ"])
    with pytest.raises(UsageError, match="aborted"):
        w.close()
    assert not (tmp_path / "p").exists() and _leftovers(tmp_path) == []


def test_layout_and_scheme_must_agree(tmp_path):
    with pytest.raises(UsageError, match="30-nt barcodes"):
        PoolWriter(tmp_path / "p", layout=OligoLayout(barcode_length=24))


# ---- broken pool files ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,line,msg", [
    ("bad_length.csv", 3, "has 164 nt, expected 165"),
    ("bad_primer.csv", 4, "does not follow the layout: RP is"),
    ("bad_base.csv", 5, "unknown base(s) 'N'"),
    ("bad_barcode_word.csv", 2, "barcode word 1 'AAAAA' is not in the codebook"),
    ("bad_barcode_check.csv", 6, "not an exact Reed-Solomon codeword"),
    ("dup_barcode.csv", 4, "repeats the one on line 2"),
    ("missing_column.csv", 1, "lacks column(s) Sequence"),
    ("header_only.csv", None, "has a header but no oligos"),
])
def test_broken_pool_files(data_dir, name, line, msg):
    path = data_dir / "oligos" / name
    with pytest.raises(DataError) as e:
        read_pool(path, chunksize=2)
    s = str(e.value)
    assert msg in s and str(path) in s and "\n" not in s
    if line is not None:
        assert f"line {line}:" in s


def test_bad_manifest(tmp_path):
    build_pool(["a", "b"], _feats(2), tmp_path / "p")
    m = tmp_path / "p" / "manifest.json"
    m.write_text("{not json")
    with pytest.raises(DataError, match="manifest.json: manifest is not valid JSON"):
        read_pool(tmp_path / "p")
    m.write_text(json.dumps({"documents": 3}))
    with pytest.raises(DataError, match="has 2 oligos but the manifest says 3"):
        read_pool(tmp_path / "p")
    m.write_text(json.dumps({"documents": 1}))
    with pytest.raises(DataError, match="has 2 oligos but the manifest says 1"):
        read_pool(tmp_path / "p", chunksize=1)
    with pytest.raises(UsageError, match="does not exist"):
        read_pool(tmp_path / "nope")


def test_check_pool_serial_and_two_processes_agree(tmp_path):
    feats = _feats(30, seed=9)
    feats[4] = feats[4][:5] + "G" * 9 + feats[4][14:]
    feats[11] = feats[11][:40] + "CAGGAGGTTG" + feats[11][50:]  # RP* 5' end = RP 3' end site
    build_pool([f"i{i}" for i in range(30)], feats, tmp_path / "p")
    serial = check_pool(tmp_path / "p", chunksize=7)
    with get_mapper(processes=2) as m:
        par = check_pool(tmp_path / "p", chunksize=7, mapper=m)
    assert serial.counts == par.counts and serial.flags == par.flags
    assert {4, 11} <= set(serial.failed_indices.tolist())
    assert any(f.index == 11 and f.check == "primer_site" for f in serial.flags)


def test_duplicate_image_id_in_a_pool_file(data_dir, tmp_path):
    lines = gzip.open(data_dir / "oligos" / "database_seqs.csv.gz", "rt").read().splitlines()
    lines[4] = lines[2].split(",")[0] + "," + lines[4].split(",")[1]
    bad = tmp_path / "dup_id.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"dup_id.csv, line 5: ImageID 'img_0000001' repeats the "
                                        r"one on line 3"):
        read_pool(bad)
    assert len(read_pool(bad, allow_duplicates=True)) == 5


def test_first_repeat_matches_reference():
    from primo.oligos.pool import _first_repeat

    rng = np.random.default_rng(11)
    for _ in range(200):
        keys = rng.integers(0, 30, rng.integers(0, 25))
        seen, want = {}, (-1, -1)
        for i, k in enumerate(keys.tolist()):
            if k in seen:
                want = (i, seen[k])
                break
            seen[k] = i
        assert _first_repeat(keys) == want


def test_extra_manifest_entries(tmp_path):
    with PoolWriter(tmp_path / "p", extra_manifest={"model": {"path": "m/"}}) as w:
        w.add(["a", "b"], _feats(2))
    m = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert m["model"] == {"path": "m/"} and m["documents"] == 2
    w = PoolWriter(tmp_path / "q", extra_manifest={"documents": 5})
    w.add(["a", "b"], _feats(2))
    with pytest.raises(UsageError, match="would replace"):
        w.close()
    assert not (tmp_path / "q").exists()
