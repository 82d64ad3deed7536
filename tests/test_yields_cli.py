"""``primo yields``: output layout, sidecar, 1 and 2 processes, broken inputs, no TensorFlow."""

import csv
import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from primo.errors import DataError, MissingDependencyError, UsageError
from primo.thermo import available_backends

DATA = __import__("pathlib").Path(__file__).parent / "data" / "yields"


def _read(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def expected():
    return _read(DATA / "expected_yields.csv")


@pytest.mark.parametrize("processes", ["1", "2"])
def test_yields_match_reference(run_cli, tmp_path, expected, processes):
    out = tmp_path / "y.csv"
    res, stdout, err = run_cli(["yields", DATA / "pairs.csv", "-o", out, "-j", processes,
                                "--chunk-rows", "5", "--task-rows", "2"])
    assert res.exit_code == 0, err
    rows = _read(out)
    with open(out) as fh:
        assert fh.readline().strip() == "pair_id,target_features,query_features,duplex_yield"
    assert [r["pair_id"] for r in rows] == [r["pair_id"] for r in expected]
    got = np.array([float(r["duplex_yield"]) for r in rows])
    ref = np.array([float(r["duplex_yield"]) for r in expected])
    import RNA

    tol = dict(rtol=1e-9, atol=1e-12) if RNA.__version__ == "2.8.0" else dict(atol=0.05)
    np.testing.assert_allclose(got, ref, **tol)
    side = json.loads((tmp_path / "y.csv.json").read_text())
    assert side["pairs"] == len(expected) and side["command"].startswith("primo yields")
    assert side["simulator"]["backend"] == "vienna" and side["simulator"]["temperature_c"] == 21.0
    assert "primo_version" in side and side["simulator"]["backend_version"]
    assert f"wrote {len(expected)} yields" in err


def test_gzip_in_and_out_and_settings(run_cli, tmp_path, expected):
    out = tmp_path / "y.csv.gz"
    res, _, err = run_cli(["yields", DATA / "pairs.csv.gz", "-o", out, "-j", "1",
                           "--temperature", "30", "--target-conc", "2e-9"])
    assert res.exit_code == 0, err
    with open(out, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"  # really gzip
    rows = _read(out)
    y30 = np.array([float(r["duplex_yield"]) for r in rows])
    assert len(rows) == len(expected) and np.all((y30 >= 0) & (y30 <= 1))
    side = json.loads((tmp_path / "y.csv.gz.json").read_text())
    assert side["simulator"]["temperature_c"] == 30.0 and side["simulator"]["target_conc_m"] == 2e-9


@pytest.mark.slow
def test_dask_scheduler_option(run_cli, tmp_path, expected):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "y.csv"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as c:
        res, _, err = run_cli(["yields", DATA / "pairs.csv", "-o", out, "--scheduler",
                               c.scheduler_address, "--task-rows", "3"])
    assert res.exit_code == 0, err
    assert json.loads((tmp_path / "y.csv.json").read_text())["mapper"].startswith("dask")
    res, _, _ = run_cli(["yields", DATA / "pairs.csv", "-o", tmp_path / "s.csv", "-j", "1"])
    assert res.exit_code == 0
    dask_rows, serial_rows = _read(out), _read(tmp_path / "s.csv")
    assert len(dask_rows) == len(expected)
    assert dask_rows == serial_rows  # identical text, bit for bit


@pytest.mark.parametrize("name,args,error,code,pieces", [
    ("bad_base.csv", [], DataError, 1, ["line 3", "unknown base", "A, C, G, T"]),
    ("wrong_length.csv", [], DataError, 1, ["line 4", "79 nt, expected 80", "--feature-length"]),
    ("length_mismatch.csv", ["--feature-length", "0"], DataError, 1,
     ["line 2", "70 nt but query_features 75 nt"]),
    ("empty.csv", [], DataError, 1, ["empty.csv", "empty", "target_features"]),
    ("header_only.csv", [], DataError, 1, ["header_only.csv", "no rows"]),
    ("missing_column.csv", [], DataError, 1, ["missing_column.csv", "line 1", "query_features"]),
    ("pairs.csv", ["--backend", "foo"], UsageError, 2,
     ["unknown simulator backend 'foo'", "vienna"]),
    ("pairs.csv", ["--target-conc", "0"], UsageError, 2, ["concentration", "1e-9"]),
    ("missing.csv", [], UsageError, 2, ["missing.csv", "does not exist"]),
])
def test_bad_input(run_cli, tmp_path, name, args, error, code, pieces):
    out = tmp_path / "y.csv"
    res, _, err = run_cli(["yields", DATA / name, "-o", out, "-j", "1", *args])
    assert res.exit_code == code
    assert isinstance(res.error, error)
    line = err.strip()
    assert "\n" not in line and line.startswith("primo yields: error:")
    for piece in pieces:
        assert piece in line, line
    assert not out.exists() and not (tmp_path / "y.csv.json").exists()  # nothing half-written


@pytest.mark.skipif("nupack" in available_backends(), reason="NUPACK is installed here")
def test_nupack_backend_without_nupack(run_cli, tmp_path):
    res, _, err = run_cli(["yields", DATA / "pairs.csv", "-o", tmp_path / "y.csv",
                           "--backend", "nupack"])
    assert res.exit_code == 2 and isinstance(res.error, MissingDependencyError)
    line = err.strip()
    assert "\n" not in line and "NUPACK 4" in line and "nupack.org" in line
    assert "pip install nupack" in line and "--backend vienna" in line


def test_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from primo.cli import main\n"
        f"r = main(['yields', {str(DATA / 'pairs.csv')!r}, '-o', {str(tmp_path / 'y.csv')!r}, "
        "'-j', '1'])\n"
        "assert r.exit_code == 0, r\n"
        "print('TF' if any(m == 'tensorflow' or m.startswith('tensorflow.') or m == 'keras'"
        " for m in sys.modules) else 'NO-TF')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NO-TF")


def test_energies_column(run_cli, tmp_path, expected):
    """``--energies`` adds the binding free energy, which keeps ordering saturated yields."""
    out = tmp_path / "e.csv"
    res, _, err = run_cli(["yields", DATA / "pairs.csv", "-o", out, "-j", "1", "--energies"])
    assert res.exit_code == 0, err
    rows = _read(out)
    assert list(rows[0])[-2:] == ["duplex_yield", "binding_dG"]
    y = np.array([float(r["duplex_yield"]) for r in rows])
    dg = np.array([float(r["binding_dG"]) for r in rows])
    assert np.all(dg < 0)
    # K = exp(-dG/RT) at 1 nM each: the yield is a monotone function of dG alone when
    # homodimers are weak, so strongly bound pairs have the lowest energies
    from primo.thermo.simulator import Simulator

    sim = Simulator()
    g = sim.free_energies([r["target_features"] for r in rows],
                          [r["query_features"] for r in rows])
    np.testing.assert_allclose(dg, g[:, 4] - g[:, 0] - g[:, 1], rtol=1e-12)
    assert dg[y > 0.99].max() < dg[y < 0.01].min()
    side = json.loads((tmp_path / "e.csv.json").read_text())
    assert "binding_dG" in side["columns"]
