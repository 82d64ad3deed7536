import csv
import gzip
import json
import shutil

import pytest

from primo.errors import DataError
from primo.oligos import read_pool

PUBLISHED_BARCODE = "CTGATAGTAGATCATAGATGACACGATGAT"


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


@pytest.fixture
def oligo_data(data_dir):
    return data_dir / "oligos"


def test_build_check_info(run_cli, oligo_data, tmp_path):
    out = tmp_path / "pool"
    res, stdout, err = run_cli(["pool", "build", oligo_data / "pairs.csv", "-o", out])
    assert res.exit_code == 0, err
    assert "wrote 5 oligos (165 nt)" in err
    pool = read_pool(out)
    assert pool.indices.tolist() == [0, 1, 2, 3, 4]
    # same feature regions as the published-layout fixture built independently with reedsolo
    ref = read_pool(oligo_data / "database_seqs.csv.gz")
    assert list(pool.features) == list(ref.features)
    assert pool.image_ids.tolist() == ref.image_ids.tolist()
    m = json.loads((out / "manifest.json").read_text())
    assert m["provenance"]["command"].startswith("primo pool build")
    assert m["source"].endswith("pairs.csv")

    res, stdout, err = run_cli(["pool", "info", out])
    assert res.exit_code == 0
    assert "documents   5 (indices 0..4)" in stdout and "published scheme" in stdout
    res, stdout, err = run_cli(["pool", "info", "--verify", "--json", out])
    assert res.exit_code == 0 and json.loads(stdout)["documents"] == 5
    res, stdout, err = run_cli(["pool", "info", "--json", oligo_data / "database_seqs.csv.gz"])
    d = json.loads(stdout)
    assert d["documents"] == 5 and d["index_max"] == 1_600_042 and d["qc"] is None

    res, stdout, err = run_cli(["pool", "check", out, "--max-homopolymer", "20"])
    assert res.exit_code == 0, err
    assert "QC passed" in stdout


def test_build_with_index_column_and_options(run_cli, oligo_data, tmp_path):
    src = tmp_path / "pairs.csv"
    rows = list(csv.reader(open(oligo_data / "pairs.csv")))
    with open(src, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Index", "ImageID", "Feature"])
        for i, (iid, f) in enumerate(rows[1:]):
            w.writerow([1_600_040 + i, iid, f])
    out = tmp_path / "pool"
    res, stdout, err = run_cli(["pool", "build", src, "-o", out, "--index-column", "Index",
                                "--name-prefix", "bee", "--qc", "off"])
    assert res.exit_code == 0, err
    pool = read_pool(out)
    assert pool.indices.tolist() == list(range(1_600_040, 1_600_045))
    assert pool.barcodes[2] == PUBLISHED_BARCODE
    with open(out / "twist_order.csv") as fh:
        assert next(csv.reader(fh)) == ["name", "sequence"] and fh.readline().startswith("bee_1600040,")
    res, stdout, err = run_cli(["pool", "info", out])
    assert "QC          not run when built" in stdout


def test_check_reports_planted_problems_and_exits_1(run_cli, tmp_path, oligo_data):
    rows = list(csv.reader(open(oligo_data / "pairs.csv")))
    rows[2][1] = rows[2][1][:30] + "A" * 12 + rows[2][1][42:]
    src = tmp_path / "pairs.csv"
    with open(src, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    out = tmp_path / "pool"
    res, stdout, err = run_cli(["pool", "build", src, "-o", out, "--qc", "warn"])
    assert res.exit_code == 0
    assert "warning" in err and "homopolymer" in err
    flags_csv = tmp_path / "flags.csv"
    res, stdout, err = run_cli(["pool", "check", out, "--flags", flags_csv, "--processes", "1"])
    assert res.exit_code == 1 and isinstance(res.error, DataError)
    assert "QC FAILED" in stdout and "homopolymer" in stdout
    assert err.count("\n") == 1 and str(out) in err and "failed QC" in err
    flags = list(csv.reader(open(flags_csv)))
    assert flags[0] == ["index", "ImageID", "check", "value", "limit"]
    assert ["1", "img_0000001", "homopolymer"] in [r[:3] for r in flags[1:]]
    res, stdout, err = run_cli(["pool", "check", out, "--json", "--max-homopolymer", "12"])
    assert res.exit_code == 0 and json.loads(stdout)["passed"] is True


def test_qc_fail_leaves_no_pool(run_cli, tmp_path, oligo_data):
    rows = list(csv.reader(open(oligo_data / "pairs.csv")))
    rows[3][1] = rows[3][1][:10] + "GCGGCCGCGG" * 4 + rows[3][1][50:]
    src = tmp_path / "pairs.csv"
    with open(src, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    res, stdout, err = run_cli(["pool", "build", src, "-o", tmp_path / "pool", "--qc", "fail"])
    assert res.exit_code == 1
    assert err.count("\n") == 1 and "failed QC" in err and "--qc warn" in err
    assert not (tmp_path / "pool").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("name,where,msg", [
    ("pairs_bad_base.csv", "line 4", "unknown base(s) 'X'"),
    ("pairs_short_feature.csv", "line 3", "has 77 nt, expected 80"),
    ("pairs_dup_id.csv", "line 6", "duplicate ImageID 'img_0000001' (first at line 3)"),
    ("pairs_header_only.csv", "", "no documents to put in the pool"),
    ("pairs_empty.csv", "", "pairs file is empty"),
    ("pairs_index_too_large.csv", "line 3", "more documents than barcode IDs"),
])
def test_bad_pairs_files(run_cli, oligo_data, tmp_path, name, where, msg):
    src = oligo_data / name
    out = tmp_path / "pool"
    extra = ["--index-column", "Index"] if "index" in name else []
    res, stdout, err = run_cli(["pool", "build", src, "-o", out, *extra])
    assert res.exit_code == 1 and isinstance(res.error, DataError)
    assert err.count("\n") == 1 and err.startswith("primo pool build: error: ")
    assert str(src) in err and msg in err
    if where:
        assert f"{src}, {where}:" in err
    assert not out.exists() and _leftovers(tmp_path) == []


def test_missing_feature_column(run_cli, tmp_path):
    src = tmp_path / "p.csv"
    src.write_text("ImageID,Vector\na,ACGT\n")
    res, stdout, err = run_cli(["pool", "build", src, "-o", tmp_path / "pool"])
    assert res.exit_code == 1 and "no feature-sequence column" in err and "line 1" in err
    res, stdout, err = run_cli(["pool", "build", src, "-o", tmp_path / "pool",
                                "--feature-column", "Features"])
    assert res.exit_code == 1 and "lacks column(s) Features" in err


@pytest.mark.parametrize("name,line,msg", [
    ("bad_length.csv", 3, "has 164 nt, expected 165"),
    ("bad_primer.csv", 4, "RP is"),
    ("bad_barcode_word.csv", 2, "not in the codebook"),
    ("bad_barcode_check.csv", 6, "not an exact Reed-Solomon codeword"),
])
def test_check_and_info_name_bad_pool_rows(run_cli, oligo_data, name, line, msg):
    for cmd in ("check", "info"):
        res, stdout, err = run_cli(["pool", cmd, oligo_data / name])
        assert res.exit_code == 1
        assert err.count("\n") == 1 and f"{name}, line {line}:" in err and msg in err


def test_bad_primer_option_is_usage_error(run_cli, oligo_data, tmp_path):
    res, stdout, err = run_cli(["pool", "build", oligo_data / "pairs.csv", "-o", tmp_path / "p",
                                "--fp", "GCCGACCAGTTTCCATAN"])
    assert res.exit_code == 2 and "primer FP" in err and err.count("\n") == 1
    assert not (tmp_path / "p").exists()


def test_missing_pool_is_usage_error(run_cli, tmp_path):
    res, stdout, err = run_cli(["pool", "info", tmp_path / "nope"])
    assert res.exit_code == 2 and "does not exist" in err


def test_rebuild_over_existing_pool_replaces_it_only_when_complete(run_cli, oligo_data, tmp_path):
    out = tmp_path / "pool"
    assert run_cli(["pool", "build", oligo_data / "pairs.csv", "-o", out])[0].exit_code == 0
    before = (out / "database_seqs.csv.gz").read_bytes()
    # an earlier pool is replaced only with --overwrite
    res, _, err = run_cli(["pool", "build", oligo_data / "pairs.csv", "-o", out])
    assert res.exit_code == 2 and "--overwrite" in err
    res, _, _ = run_cli(["pool", "build", oligo_data / "pairs_bad_base.csv", "-o", out,
                         "--overwrite"])
    assert res.exit_code == 1
    assert (out / "database_seqs.csv.gz").read_bytes() == before
    shutil.copy(oligo_data / "pairs.csv", tmp_path / "again.csv")
    assert run_cli(["pool", "build", tmp_path / "again.csv", "-o", out,
                    "--overwrite"])[0].exit_code == 0
    assert gzip.open(out / "database_seqs.csv.gz").read() == gzip.decompress(before)
