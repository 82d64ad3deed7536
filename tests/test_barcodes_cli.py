"""``primo barcodes encode|decode`` through the in-process CLI runner."""

import re
import gzip

import numpy as np
import pytest

from primo.barcodes import BarcodeScheme
from primo.errors import DataError, UsageError

PUBLISHED = "CTGATAGTAGATCATAGATGACACGATGAT"


def _one_line_error(err, *needles):
    assert err.count("\n") == 1, err
    assert re.match(r"primo barcodes (encode|decode): error: ", err), err
    for n in needles:
        assert n in err, (n, err)


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory):
    """A small pool written by primo.oligos (documents 10, 11, ..., 29)."""
    from primo.oligos.pool import build_pool

    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("bcpool") / "pool"
    feats = ["".join(rng.choice(list("ACGT"), 80)) for _ in range(20)]
    build_pool([f"img{i}" for i in range(20)], feats, d, indices=np.arange(10, 30), qc="off")
    return d


# ---- encode --------------------------------------------------------------------------------
def test_encode_published_vector(run_cli):
    res, out, err = run_cli(["barcodes", "encode"], stdin="1600042\n")
    assert res.exit_code == 0, err
    assert out == PUBLISHED + "\n"


def test_encode_streams_in_chunks(run_cli):
    idx = np.random.default_rng(1).integers(0, 2**24 - 1, 1000)
    text = "".join(f"{i}\n" for i in idx)
    res, out, err = run_cli(["barcodes", "encode", "--chunksize", "7"], stdin=text)
    assert res.exit_code == 0, err
    assert out.split("\n")[:-1] == BarcodeScheme().encode(idx).tolist()
    # whitespace and a missing final newline are fine
    res, out2, _ = run_cli(["barcodes", "encode"], stdin=" 1600042 \r\n5")
    assert out2.split("\n")[0] == PUBLISHED and len(out2.split("\n")) == 3


def test_encode_with_seed(run_cli):
    res, out, _ = run_cli(["barcodes", "encode", "--barcode-seed", "7"], stdin="5\n")
    assert out.strip() == BarcodeScheme(seed=7).encode([5])[0]
    assert out.strip() != BarcodeScheme().encode([5])[0]


def test_encode_input_file(run_cli, tmp_path):
    p = tmp_path / "idx.txt.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("1600042\n0\n")
    res, out, err = run_cli(["barcodes", "encode", p])
    assert res.exit_code == 0, err
    assert out.split("\n")[0] == PUBLISHED


@pytest.mark.parametrize("text,line,needle", [
    ("1\n2\nabc\n", 3, "'abc' is not a document index"),
    ("1\n2.5\n", 2, "'2.5' is not a document index"),
    ("1\n\n3\n", 2, "an empty line is not a document index"),
    ("0\n-1\n", 2, "document index -1 is outside"),
    ("0\n16777215\n", 2, "document index 16777215 is outside"),
    ("0\n" * 5 + "99999999999999999999999\n", 6, "is outside"),
])
def test_encode_bad_input(run_cli, text, line, needle):
    res, out, err = run_cli(["barcodes", "encode", "--chunksize", "2"], stdin=text)
    assert res.exit_code == 1 and isinstance(res.error, DataError)
    _one_line_error(err, f"<stdin>, line {line}:", needle)
    assert "(" in err  # a hint on how to fix it


def test_encode_bad_input_names_the_file(run_cli, tmp_path):
    p = tmp_path / "idx.txt"
    p.write_text("1\nx\n")
    res, out, err = run_cli(["barcodes", "encode", p])
    assert res.exit_code == 1
    _one_line_error(err, f"{p}, line 2:")


# ---- decode --------------------------------------------------------------------------------
def test_decode_round_trip_with_status(run_cli):
    idx = np.random.default_rng(2).integers(0, 2**24 - 1, 500)
    bcs = BarcodeScheme().encode(idx).tolist()
    bcs[3] = bcs[3][:-1] + ("A" if bcs[3][-1] != "A" else "C")  # one substitution
    bcs[4] = "N" * 30                                            # unreadable
    res, out, err = run_cli(["barcodes", "decode", "--status", "--chunksize", "64"],
                            stdin="\n".join(bcs) + "\n")
    assert res.exit_code == 0, err
    lines = out.split("\n")[:-1]
    assert len(lines) == 500
    cols = [ln.split("\t") for ln in lines]
    assert [int(c[0]) for i, c in enumerate(cols) if i != 4] == [v for i, v in enumerate(idx)
                                                                  if i != 4]
    assert cols[0][1] == "exact" and cols[3][1] in ("corrected_error", "corrected_erasure")
    assert cols[4] == ["", "uncorrectable"]


def test_decode_rejected_is_an_empty_line(run_cli):
    res, out, err = run_cli(["barcodes", "decode"],
                            stdin=f"{PUBLISHED}\n{'A' * 30}\n{PUBLISHED.lower()}\n")
    assert res.exit_code == 0, err
    assert out == "1600042\n\n1600042\n"


def test_decode_max_distance(run_cli):
    bc = PUBLISHED[:5] + "GGGGG" + PUBLISHED[10:20] + "GGGGG" + PUBLISHED[25:]
    _, out, _ = run_cli(["barcodes", "decode", "--status"], stdin=bc + "\n")
    assert out == "\ttoo_distant\n"
    _, out, _ = run_cli(["barcodes", "decode", "--status", "--max-barcode-mismatches", "30"], stdin=bc + "\n")
    assert out == "1600042\tcorrected_erasure\n"


@pytest.mark.parametrize("bad,needle", [
    (PUBLISHED[:-1], "has 29 nt, expected a 30-nt barcode"),
    (PUBLISHED + "A", "has 31 nt"),
    ("", "an empty line, expected a 30-nt barcode"),
    (PUBLISHED[:-1] + "X", "unknown character(s) 'X'"),
    (PUBLISHED[:10] + "-" + PUBLISHED[11:], "unknown character(s) '-'"),
])
def test_decode_bad_input(run_cli, bad, needle):
    text = "\n".join([PUBLISHED] * 4 + [bad, PUBLISHED]) + "\n"
    res, out, err = run_cli(["barcodes", "decode", "--chunksize", "3"], stdin=text)
    assert res.exit_code == 1 and isinstance(res.error, DataError)
    _one_line_error(err, "<stdin>, line 5:", needle)
    # the chunk before the bad line was written
    assert out == "1600042\n" * 3


# ---- pools ---------------------------------------------------------------------------------
def test_pool_directory(run_cli, pool_dir):
    res, out, err = run_cli(["barcodes", "encode", "--pool", pool_dir], stdin="10\n29\n")
    assert res.exit_code == 0, err
    bcs = out.split("\n")[:-1]
    assert bcs == BarcodeScheme().encode([10, 29]).tolist()
    res, out, err = run_cli(["barcodes", "decode", "--pool", pool_dir, "--status"],
                            stdin="\n".join(bcs + [PUBLISHED]) + "\n")
    assert res.exit_code == 0, err
    assert out == "10\texact\n29\texact\n\tnot_in_pool\n"


def test_pool_database_file(run_cli, pool_dir):
    db = pool_dir / "database_seqs.csv.gz"
    bc = BarcodeScheme().encode([15])[0]
    res, out, err = run_cli(["barcodes", "decode", "--pool", db], stdin=bc + "\n")
    assert res.exit_code == 0, err
    assert out == "15\n"


def test_encode_index_not_in_pool(run_cli, pool_dir):
    res, out, err = run_cli(["barcodes", "encode", "--pool", pool_dir], stdin="10\n9\n")
    assert res.exit_code == 1
    _one_line_error(err, "line 2:", "document index 9 is not in the pool")


def test_pool_and_seed_conflict(run_cli, pool_dir):
    res, out, err = run_cli(["barcodes", "decode", "--pool", pool_dir, "--barcode-seed", "3"], stdin="")
    assert res.exit_code == 2 and isinstance(res.error, UsageError)
    _one_line_error(err, "--barcode-seed and --pool")


def test_missing_pool_and_input(run_cli, tmp_path):
    res, out, err = run_cli(["barcodes", "decode", "--pool", tmp_path / "nope"], stdin="")
    assert res.exit_code == 2
    _one_line_error(err, "nope")
    res, out, err = run_cli(["barcodes", "encode", tmp_path / "missing.txt"])
    assert res.exit_code == 2
    _one_line_error(err, "missing.txt", "does not exist")


def test_help(run_cli):
    res, out, _ = run_cli(["barcodes", "--help"])
    assert res.exit_code == 0 and "encode" in out and "decode" in out
