"""Smoke tests of the scripts in benchmarks/, experiments/ and tools/ (not of their figures).

Every script answers ``--help``; the quick ones run end to end with tiny arguments on bundled or
generated data, each in a subprocess the way a reader runs it (``python experiments/x.py``, from a
scratch folder), and what they print or write is checked. Runs over ~5 s are marked ``slow``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("benchmarks", "experiments", "tools")
SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for d in FOLDERS for p in (ROOT / d).glob("*.py")
                 if not p.name.startswith("_"))

#: private names still used, because primo has no public equivalent (see experiments/README.md)
PRIVATE_OK: dict = {}


def run(script, *args, cwd, timeout=180, module=False):
    """Run ``python SCRIPT ARGS`` (or ``python -m``) in ``cwd``; stdout, after asserting exit 0."""
    cmd = [sys.executable, "-m", script] if module else [sys.executable, str(ROOT / script)]
    env = {**os.environ, "PRIMO_QUIET": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(cmd + [str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_every_script_is_listed():
    assert not list(ROOT.glob("scripts/*.py"))
    assert len(SCRIPTS) >= 27, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, tmp_path):
    out = run(script, "--help", cwd=tmp_path)
    assert out.startswith("usage:"), out[:200]
    assert not list(tmp_path.iterdir()), "--help wrote files"


@pytest.mark.parametrize("script", SCRIPTS + ["benchmarks/_scale_data.py"])
def test_public_names_only(script):
    """No sys.path edits, no private names of primo (except those listed in PRIVATE_OK)."""
    text = (ROOT / script).read_text()
    assert not re.search(r"sys\.path\.(insert|append|extend)|sys\.path\s*(\[|=|\+=)", text)
    names = (set(re.findall(r"\bimport (_[a-z]\w*)", text))
             | set(re.findall(r"\bfrom (primo(?:\.\w+)*\._\w+)", text))
             | set(re.findall(r"\b([a-z]\w*\._[a-z]\w*)\(", text)))
    names = {n for n in names if not n.startswith(("self.", "sys."))}
    assert names <= PRIVATE_OK.get(script, set()), names


def test_runs_as_a_module():
    out = run("benchmarks.bench_encode_db", "--help", cwd=ROOT, module=True)
    assert "--workdir" in out


# ---- tiny runs -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    """Fashion-MNIST-shaped IDX files (300 train, 100 test images of noise, 10 classes)."""
    d = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 100)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        with gzip.open(d / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
        with gzip.open(d / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">II", 0x801, n) + labels.tobytes())
    return d


def test_bench_barcodes(tmp_path):
    out = run("benchmarks/bench_barcodes.py", "--n", 2000, "--peer-n", 200, "--pool-size", 1000,
              "--repeat", 1, cwd=tmp_path)
    assert re.search(r"^ratio .*reedsolo.*: [\d.]+x$", out, re.M), out


def test_bench_yields(tmp_path):
    out = run("benchmarks/bench_yields.py", "--targets", 2, "--queries", 2, "--workers", 1,
              "--repeat", 1, "--no-dask", cwd=tmp_path)
    assert "all runs give identical yields" in out
    assert re.search(r"caching speed-up over naive: +[\d.]+x", out), out


def test_bench_extract_store(tmp_path):
    out = run("benchmarks/bench_extract.py", "--skip-vgg16", "--rows", 2000, "--dim", 16,
              "--chunk", 500, "--repeats", 1, "--fashion-images", 40, "--dir", tmp_path,
              cwd=tmp_path)
    assert re.search(r"FeatureStore\.iter_chunks: .*ratio vs numpy\.load [\d.]+", out), out
    assert re.search(r"fashion-embed .* 40 images .*\n(.*\n){3}  ratio primo / Keras: files "
                     r"[\d.]+, array [\d.]+", out), out


@pytest.mark.slow
def test_bench_analyze(tmp_path):
    out = run("benchmarks/bench_analyze.py", "--docs", 1000, "--reads", 2000, "--files", 1,
              "--processes", 1, "--workdir", tmp_path / "work", cwd=tmp_path)
    assert re.search(r"^ratio primo / published: [\d.]+x", out, re.M), out


@pytest.mark.slow
def test_bench_predictors(tmp_path):
    out = run("benchmarks/bench_predictors.py", "--batch", 4, "--repeats", 1, "--threads", 1,
              "--loops", cwd=tmp_path)
    assert re.search(r"^inference +\d+ +\d+ +[\d.]+x", out, re.M), out


def test_barcode_recovery(tmp_path):
    out = run("experiments/barcode_recovery.py", "--n", 200, "--pool-size", 1000, cwd=tmp_path)
    assert "PASS  1 substitution, pool" in out and "FAIL" not in out


def test_plot_yield_curve(tmp_path):
    png = tmp_path / "curve.png"
    out = run("experiments/plot_yield_curve.py", "--pairs", 2, "--step", 0.5, "-o", png, "-j", 1,
              cwd=tmp_path)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert re.search(r"^ +0\.00 +2 +1\.0000", out, re.M), out


def test_thermo_fit_error(tmp_path):
    out = run("experiments/thermo_fit_error.py", "--pairs", 1, "--levels", 0, "--nodes", 3,
              "-j", 1, cwd=tmp_path)
    assert re.search(r"^\| line \|", out, re.M) and re.search(r"^\| nodes=3 \|", out, re.M), out


@pytest.mark.slow
def test_loop_enthalpies(tmp_path):
    out = run("experiments/loop_enthalpies.py", "--pairs", 1, "--temperatures", 80,
              "--fractions", 0, 0.5, cwd=tmp_path)
    for loops in ("clipped", "shipped"):
        assert re.search(rf"^\| {loops} \| 80 \| [\d.]+ \| [\d.]+ \|$", out, re.M), out


@pytest.mark.slow
def test_stacks_vs_experiment(tmp_path):
    lines = (ROOT / "tests/data/melting/owczarzy2004_1M.csv").read_text().splitlines()
    rows = [line for line in lines if not line.startswith("#")]
    data = tmp_path / "three.csv"
    data.write_text("\n".join(rows[:4]) + "\n")
    out = run("experiments/stacks_vs_experiment.py", "--data", data, cwd=tmp_path)
    assert "3 duplexes" in out and re.search(r"ViennaRNA, --stacks santalucia +3 ", out), out


def test_compare_objectives_tabulates(tmp_path):
    out = run("experiments/compare_objectives.py", "--no-train", "--work", tmp_path / "w",
              "--features", tmp_path / "none.h5", cwd=tmp_path)
    assert "Capture figures" in out


def test_fashion_benchmark_peers(tmp_path, fashion_dir):
    out = run("experiments/fashion_benchmark_peers.py", "--dir", fashion_dir, "--queries", 5,
              "--k", 5, "--peers", "mrpt", "-o", tmp_path / "out", cwd=tmp_path)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["parameters"]["database_size"] == 300
    assert "mrpt" in summary["algorithms"] and re.search(r"^mrpt ", out, re.M)


def test_make_demo_data(tmp_path, fashion_dir):
    npz = tmp_path / "demo.npz"
    out = run("tools/make_demo_data.py", "--dir", fashion_dir, "--per-class", 2, "-o", npz,
              cwd=tmp_path)
    assert "wrote 20 images" in out
    with np.load(npz) as z:
        assert z["images"].shape == (20, 28, 28)


@pytest.mark.slow
def test_floor_analysis(tmp_path):
    out = run("experiments/floor_analysis.py", "--pairs", 20, "--duplex-pairs", 2,
              "--family-pairs", 2, "--mutant-pairs", 2, "--families", "uniform",
              "--temperatures", 21, "-j", 1, cwd=tmp_path)
    assert "by sequence family at 21 °C" in out
    assert re.search(r"^ +uniform +random +[\d.]+%", out, re.M), out


@pytest.mark.slow
def test_robustness_runs_cells_and_tabulates(tmp_path, tiny_workspace):
    ws = tiny_workspace
    out = run("experiments/robustness.py", "-f", ws.features, "-Q", ws.features, "--out",
              tmp_path / "r", "--model", f"tiny-s0={ws.model}", "--cells", "default", "kinetic",
              "--query-count", 2, "--refine", 5, "--sample", 5, "-j", 1, "--peers", "mrpt",
              cwd=tmp_path, timeout=600)
    assert "| default | tiny |" in out and "| kinetic | tiny |" in out and "| peers | mrpt |" in out
    d = json.loads((tmp_path / "r" / "robustness.json").read_text())
    assert set(d["cells"]) == {"default", "kinetic"} and d["queries"] == 2
    assert d["cells"]["kinetic"]["tiny-s0"]["p50"] is None or d["cells"]["kinetic"]["tiny-s0"]["p50"] > 0
    summary = json.loads((tmp_path / "r" / "tiny-s0" / "kinetic" / "simulate" / "summary.json")
                         .read_text())
    assert "kinetic" in json.dumps(summary)
    # the default capture is kinetic: the second cell computes no energy, it reads the first's
    assert summary["energy_cache"]["values_computed"] == 0
    assert summary["energy_cache"]["values_reused"] > 0
    assert (tmp_path / "r" / "tiny-s0" / "energies.sqlite").is_file()


@pytest.mark.slow
def test_kinetic_energy_scheme(tmp_path):
    out = run("experiments/kinetic_energy_scheme.py", "--probes", 1, "--fractions", 0.25,
              "--per-fraction", 1, "--unrelated", 1, "--step", 37, "--kinetic-nodes", 5,
              "--previous-nodes", 0, "--k-on", 1e6, "--probe-nm", 0.5, "-j", 1, cwd=tmp_path)
    assert re.search(r"^\| \*\*new scheme\*\* \| \d+ \| ", out, re.M), out
    assert re.search(r"^\| every pair at every one of 5 nodes \| 8 \| ", out, re.M), out
    assert re.search(r"^\| \*\*new scheme\*\* \| 1e\+06 / 0\.5 nM \| [\d.e+-]+ \| ", out, re.M), out
    assert "previous scheme" not in out


@pytest.mark.slow
def test_bench_energy_cache(tmp_path, tiny_workspace):
    ws = tiny_workspace
    out = run("benchmarks/bench_energy_cache.py", "-m", ws.model, "-f", ws.features, "-Q",
              ws.features, "--refine", 5, "--sample", 2, "-j", 1, "--workdir", tmp_path / "w",
              cwd=tmp_path, timeout=600)
    table = out[out.index("\nrun "):].splitlines()[2:]
    rows = {line[:24].strip(): line[24:].split() for line in table}
    assert int(rows["new store"][2]) > 0, out
    assert rows["same run, store"][2] == "0" and rows["same run, store"][-1] == "yes", out
    assert rows["without the store"][1] == "-" and rows["new store"][-1] == "yes", out


def test_robustness_cells_are_options_primo_simulate_accepts(tmp_path):
    """Every cell of the robustness matrix parses as ``primo simulate`` options (a typo in a cell
    would otherwise surface only after the cells before it have run for an hour)."""
    import importlib.util

    from primo.cli.simulate import cli as simulate

    spec = importlib.util.spec_from_file_location("robustness", ROOT / "experiments/robustness.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "m").mkdir()
    for name in ("f.h5", "q.h5"):
        (tmp_path / name).write_bytes(b"")
    base = ["-m", tmp_path / "m", "-f", tmp_path / "f.h5", "-Q", tmp_path / "q.h5", "-o",
            tmp_path / "o"]
    card = {"hybridization": {"temperature_c": 30.0}}
    for cell in [*mod.CELLS, "perturbed-s3"]:
        opts = mod.cell_options(cell, card)
        ctx = simulate.make_context("simulate", [str(a) for a in base + opts])
        assert ctx.params["output"] == str(tmp_path / "o")
        if cell == "hyb-plus3":
            assert ctx.params["anneal_to"] == 33.0
        if cell == "kon-1e5-60min":
            assert ctx.params["k_on"] == 1e5 and ctx.params["minutes_per_degree"] == 60
        if cell in ("60min", "kon-1e5-60min", "uniform", "kon-1e5-uniform"):
            from primo.simulation.capture import Protocol

            # the uniform ramp, whatever the card's training temperature
            assert Protocol.from_options("kinetic", ramp_program=ctx.params["ramp_program"],
                                         hybridization_c=21.0, training_c=80.0).bands == ()
        if cell in ("program", "margin5-share70"):
            from primo.simulation.capture import Protocol

            # for a model trained at 80 °C the margin5-share70 cell is the default (auto)
            # program, the program cell the auto rule before it
            given = Protocol.from_options("kinetic", ramp_program=ctx.params["ramp_program"],
                                          hybridization_c=21.0, training_c=80.0)
            auto = Protocol.from_options("kinetic", hybridization_c=21.0, training_c=80.0)
            assert (given == auto) == (cell == "margin5-share70")
        if cell == "kon-1e5-program":
            from primo.simulation.capture import Protocol
            from primo.simulation.kinetic import hold_temperatures

            p = Protocol.from_options("kinetic", ramp_program=ctx.params["ramp_program"],
                                      hybridization_c=21.0)
            # the paper's 25 h, spent unequally
            assert hold_temperatures(p)[1].sum() == hold_temperatures(Protocol())[1].sum()
            assert len(set(p.minutes_at(p.ramp()))) == 2
    # joined cells: the options of both, the later one's value where both set one
    opts = mod.cell_options("perturbed-s0+uniform", card)
    ctx = simulate.make_context("simulate", [str(a) for a in base + opts])
    assert ctx.params["perturb"] == 0.3 and ctx.params["perturb_seed"] == 0
    assert ctx.params["ramp_program"] == "uniform" and ctx.params["capture"] == "kinetic"
    ctx = simulate.make_context("simulate", [str(a) for a in
                                             base + mod.cell_options("kon-1e5+kon-1e7", card)])
    assert ctx.params["k_on"] == 1e7
    with pytest.raises(SystemExit, match="unknown cell"):
        mod.cell_options("kon-1e4", card)
    with pytest.raises(SystemExit, match="unknown cell"):
        mod.cell_options("uniform+kon-1e4", card)
