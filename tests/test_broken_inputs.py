"""The broken-input collection (tests/data/broken/, one README per folder) and seeded random
corruptions of every input format (issue 15, sections 2-5).

Every case asserts the exit code, that stderr holds one ``error:`` line and no traceback, what the
message names, and that nothing was written.
"""

import gzip
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from primo.errors import DataError, UsageError

DATA = Path(__file__).parent / "data"
B = DATA / "broken"
ADIR = DATA / "analyze"
POOL = ADIR / "database_seqs.csv.gz"
GOOD_H5 = B / "hdf5" / "good.h5"


def _error_line(err, exit_code, res):
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ": error: " in ln]
    assert len(errors) == 1, err
    assert all(": warning: " in ln or ln is errors[0] for ln in lines), err
    assert res.exit_code == exit_code, err
    return errors[0]


def _listing(d):
    return sorted(str(p.relative_to(d)) for p in Path(d).rglob("*"))


# (id, args (OUT = an output path in a fresh directory), exit code, words the message must hold)
CASES = [
    ("csv-third-field", ["pool", "build", B / "csv" / "third_field.csv", "-o", "OUT"], 1,
     ["third_field.csv", "line 3", "3 fields, header has 2", "'GATTACA'"]),
    ("csv-binary-pool", ["pool", "build", B / "csv" / "binary.csv", "-o", "OUT"], 1,
     ["binary.csv", "not UTF-8"]),
    ("csv-binary-yields", ["yields", B / "csv" / "binary.csv", "-o", "OUT"], 1,
     ["binary.csv", "not UTF-8"]),
    ("csv-fullwidth-index", ["pool", "build", B / "csv" / "fullwidth_index.csv", "--index-column",
                             "Index", "-o", "OUT"], 1,
     ["fullwidth_index.csv", "line 4", "is not a non-negative integer"]),
    ("barcodes-fullwidth", ["barcodes", "encode", B / "barcodes" / "fullwidth_indices.txt"], 1,
     ["fullwidth_indices.txt", "line 2", "is not a document index"]),
    ("barcodes-underscore", ["barcodes", "encode", B / "barcodes" / "underscore_index.txt"], 1,
     ["line 2", "'1_000' is not a document index"]),
    ("barcodes-plus", ["barcodes", "encode", B / "barcodes" / "plus_index.txt"], 1,
     ["line 1", "'+7'"]),
    ("barcodes-decode-empty", ["barcodes", "decode", B / "barcodes" / "decode_empty_line.txt"], 1,
     ["line 2", "an empty line, expected a 30-nt barcode"]),
    ("hdf5-truncated", ["benchmark", "-f", B / "hdf5" / "truncated.h5", "-Q", GOOD_H5, "-o", "OUT",
                        "--peers", "none", "--neighbors", "3"], 1,
     ["truncated.h5", "the HDF5 file is truncated (13,852 of 27,704 bytes)"]),
    ("hdf5-nan", ["benchmark", "-f", B / "hdf5" / "nan_row.h5", "-Q", GOOD_H5, "-o", "OUT",
                  "--peers", "none", "--neighbors", "3"], 1,
     ["nan_row.h5", "row index 7", "'doc07'", "--skip-bad-rows"]),
    ("hdf5-ids-short", ["benchmark", "-f", B / "hdf5" / "ids_short.h5", "-Q", GOOD_H5, "-o", "OUT",
                        "--peers", "none", "--neighbors", "3"], 1,
     ["ids_short.h5", "12 feature rows and 9 IDs"]),
    ("hdf5-not-a-store", ["benchmark", "-f", B / "hdf5" / "not_a_store.h5", "-Q", GOOD_H5, "-o",
                          "OUT", "--peers", "none", "--neighbors", "3"], 1,
     ["not_a_store.h5", "not a primo feature store (has embeddings)"]),
    ("peer-option-word", ["benchmark", "-f", GOOD_H5, "-Q", GOOD_H5, "-o", "OUT", "--peers", "hnsw",
                          "--peer-option", "hnsw.ef_search=abc", "--neighbors", "3"], 2,
     ["peer option value abc is not a whole number"]),
    ("peer-option-list", ["benchmark", "-f", GOOD_H5, "-Q", GOOD_H5, "-o", "OUT", "--peers", "hnsw",
                          "--peer-option", "hnsw.ef_search=1,x", "--neighbors", "3"], 2,
     ["'1,x' is not a list of numbers"]),
    ("scheduler-not-an-address", ["yields", DATA / "yields" / "pairs.csv", "-o", "OUT",
                                  "--scheduler", "notaurl"], 2,
     ["--scheduler: 'notaurl' is not a scheduler address", "tcp://HOST:PORT"]),
    ("scheduler-unknown-host", ["yields", DATA / "yields" / "pairs.csv", "-o", "OUT",
                                "--scheduler", "tcp://no-such-host.invalid:8786"], 2,
     ["host 'no-such-host.invalid' is unknown"]),
    ("output-under-a-file", ["pool", "build", DATA / "oligos" / "pairs.csv", "-o",
                             B / "csv" / "binary.csv" / "sub"], 2,
     ["cannot write", "binary.csv/sub"]),
]


@pytest.mark.parametrize("args,code,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_input(run_cli, tmp_path, monkeypatch, args, code, words):
    monkeypatch.chdir(tmp_path)
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    res, _, err = run_cli(args)
    line = _error_line(err, code, res)
    assert isinstance(res.error, DataError if code == 1 else UsageError)
    for w in words:
        assert w in line, (w, line)
    assert _listing(tmp_path) == []   # nothing written, no temporary file left


@pytest.mark.parametrize("command", ["pool build", "yields"])
def test_csv_field_beyond_the_csv_limit(run_cli, tmp_path, command):
    big = tmp_path / "big.csv"
    header = "ImageID,Sequence" if command == "pool build" else "target_features,query_features"
    big.write_text(f"{header}\nx,{'A' * 200_000}\n")
    res, _, err = run_cli([*command.split(), big, "-o", tmp_path / "out"])
    line = _error_line(err, 1, res)
    assert "big.csv, line 2: unreadable CSV row (field larger than field limit" in line
    assert _listing(tmp_path) == ["big.csv"]


# ---- inputs that are accepted, by decision ----------------------------------------------------
def test_accepted_inputs(run_cli, tmp_path):
    # empty trailing CSV fields (spreadsheet exports): read as the two named columns
    res, _, err = run_cli(["pool", "build", B / "csv" / "trailing_empty_fields.csv", "-o",
                           tmp_path / "p"])
    assert res.exit_code == 0, err and res.value.n_documents == 3
    # FASTQ qualities are not used: spaces in them change nothing
    counts = []
    for name in ["reads_40.fastq", "quality_spaces.fastq"]:
        res, _, err = run_cli(["analyze", "--pool", POOL, B / "fastq" / name, "-o",
                               tmp_path / name, "-j", "1"])
        assert res.exit_code == 0, err
        counts.append(gzip.open(tmp_path / name / "counts.csv.gz").read())
    assert counts[0] == counts[1] and b",1\n" in counts[0]
    # feature stores of other tools: unchunked float64 / int16 matrices are read as float32
    for name in ["float64_unchunked.h5", "int_unchunked.h5"]:
        res, _, err = run_cli(["benchmark", "-f", B / "hdf5" / name, "-Q", B / "hdf5" / name,
                               "-o", tmp_path / name, "--peers", "none", "--neighbors", "3"])
        assert res.exit_code == 0, err
        s = json.loads((tmp_path / name / "summary.json").read_text())
        assert s["parameters"]["database_size"] == 12


def test_usage_errors_come_before_tensorflow_is_imported(tmp_path):
    code = ("import sys; from primo.cli import main; "
            "r = main(['extract', 'x.png', '-o', 'f.h5', '-j', '0']); "
            "print(r.exit_code, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.split() == ["2", "False"], out.stdout + out.stderr
    assert "0 is not in the range x>=1" in out.stderr and "Traceback" not in out.stderr


def test_barcodes_decode_help_says_what_stops_it(run_cli):
    res, out, _ = run_cli(["barcodes", "decode", "--help"])
    assert res.exit_code == 0
    text = " ".join(out.split())
    assert "an empty line when rejected" in text
    assert "not a barcode at all (empty, not 30 nt, letters other than A C G T N) stops the run" \
        in text


# ---- model files -------------------------------------------------------------------------------
def _model_copy(ws, tmp_path, damage):
    from primo.model_dir import CARD_NAME, write_card

    m = tmp_path / "M"
    shutil.copytree(ws.model, m)
    damage(m)
    card = json.loads((m / CARD_NAME).read_text())
    write_card(m, card)   # the hashes of the damaged files, so that only loading can tell
    return m


def _truncate(p):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _lambda_encoder(p):
    import keras

    inp = keras.Input((64,))
    out = keras.layers.Lambda(lambda x: x * 2)(inp)
    keras.Model(inp, out).save(p)


MODEL_CASES = [
    ("truncated-encoder", lambda m: _truncate(m / "encoder.keras"),
     ["encoder.keras", "cannot load the encoder: the file is truncated or not a .keras archive"]),
    ("predictor-over-encoder", lambda m: shutil.copy(m / "predictor.keras", m / "encoder.keras"),
     # (in a fresh process Keras does not know the predictor's layer class 'LocalMatch'; here
     # it does, and the encoder's inputs tell)
     ["encoder.keras", "cannot load the encoder: it is not a primo encoder", "copied over it"]),
    ("lambda-encoder", lambda m: _lambda_encoder(m / "encoder.keras"),
     ["encoder.keras", "Lambda layer", "safe_mode"]),
]


@pytest.mark.parametrize("damage,words", [c[1:] for c in MODEL_CASES],
                         ids=[c[0] for c in MODEL_CASES])
def test_model_files_that_do_not_load(run_cli, tiny_workspace, tmp_path, damage, words):
    m = _model_copy(tiny_workspace, tmp_path, damage)
    before = _listing(tmp_path)
    res, _, err = run_cli(["encode-db", "-m", m, "-f", tiny_workspace.features, "-o",
                           tmp_path / "pool"])
    line = _error_line(err, 1, res)
    for w in words:
        assert w in line, (w, line)
    assert _listing(tmp_path) == before


def test_simulate_names_the_file_of_a_nan_query(run_cli, tiny_workspace, tmp_path):
    import h5py

    q = tmp_path / "q.h5"
    shutil.copy(tiny_workspace.features, q)
    with h5py.File(q, "r+") as f:
        f["features"][0, :] = np.nan
        qid = f["ids"].asstr()[0]
    res, _, err = run_cli(["simulate", "-m", tiny_workspace.model, "-f", tiny_workspace.features,
                           "-Q", q, "--query-id", qid, "-o", tmp_path / "s", "-j", "1"])
    line = _error_line(err, 1, res)
    assert str(q) in line and repr(qid) in line and "row index 0" in line
    assert not (tmp_path / "s").exists()


# ---- seeded random corruptions of every input format ------------------------------------------
def _cut(data: bytes, rng, avoid_after=b"\n") -> bytes:
    """A prefix of ``data`` that ends inside a line (never right after ``avoid_after``)."""
    while True:
        k = rng.randrange(1, len(data) - 1)
        if data[k - 1:k] != avoid_after:
            return data[:k]


def _noise(rng, n=300, first=b"\x00"):
    return first + bytes(rng.randrange(256) for _ in range(n))


def _fastq(rng, kind):
    data = (B / "fastq" / "reads_40.fastq").read_bytes()
    return ("bad.fastq", _noise(rng) if kind == "noise" else _cut(data, rng))


def _gzip(rng, kind):
    data = gzip.compress((B / "fastq" / "reads_40.fastq").read_bytes(), mtime=0)
    if kind == "noise":
        return "bad.fastq.gz", b"\x1f\x8b" + _noise(rng)
    return "bad.fastq.gz", data[: rng.randrange(10, len(data) - 9)]


def _csv(rng, kind):
    data = (DATA / "oligos" / "pairs.csv").read_bytes()
    return ("bad.csv", _noise(rng, first=b"\xff") if kind == "noise" else _cut(data, rng))


def _hdf5(rng, kind):
    data = GOOD_H5.read_bytes()
    return ("bad.h5", _noise(rng) if kind == "noise" else data[: rng.randrange(1, len(data) - 1)])


def _image(rng, kind):
    from PIL import Image

    buf = __import__("io").BytesIO()
    Image.fromarray(np.full((28, 28), 128, np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    return ("bad.png", _noise(rng) if kind == "noise" else data[: rng.randrange(8, len(data) - 1)])


FORMATS = {
    "fastq": (_fastq, lambda p, out: ["analyze", "--pool", POOL, p, "-o", out, "-j", "1"]),
    "gzip": (_gzip, lambda p, out: ["analyze", "--pool", POOL, p, "-o", out, "-j", "1"]),
    "csv": (_csv, lambda p, out: ["pool", "build", p, "-o", out]),
    "hdf5": (_hdf5, lambda p, out: ["benchmark", "-f", p, "-Q", GOOD_H5, "-o", out,
                                    "--peers", "none", "--neighbors", "3"]),
    "image": (_image, lambda p, out: ["extract", p, "-m", "fashion-embed", "-o", out]),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("kind", ["noise", "truncated"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_random_corruption(run_cli, tmp_path, monkeypatch, fmt, kind, seed):
    make, args = FORMATS[fmt]
    rng = random.Random(f"{fmt}-{kind}-{seed}")
    name, data = make(rng, kind)
    inp = tmp_path / name
    inp.write_bytes(data)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / ("out.h5" if fmt == "image" else "out")
    res, _, err = run_cli(args(inp, out))
    assert res.exit_code in (1, 2), err
    _error_line(err, res.exit_code, res)
    assert _listing(tmp_path) == [name]


def test_keras_file_corruptions(run_cli, tiny_workspace, tmp_path):
    """Random bytes and random truncations of encoder.keras (hashes fixed in the card)."""
    rng = random.Random(15)
    for i in range(3):
        def damage(m, i=i):
            p = m / "encoder.keras"
            p.write_bytes(_noise(rng) if i == 0 else _cut(p.read_bytes(), rng, avoid_after=b""))

        d = tmp_path / str(i)
        d.mkdir()
        m = _model_copy(tiny_workspace, d, damage)
        res, _, err = run_cli(["encode-db", "-m", m, "-f", tiny_workspace.features, "-o",
                               d / "pool"])
        line = _error_line(err, 1, res)
        assert "encoder.keras" in line and "cannot load the encoder" in line
        assert not (d / "pool").exists()


# ---- interruption -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_fastq(tmp_path_factory):
    """~2,000,000 reads (seconds of `analyze -j 2` even with the C kernel): one gzip member of
    ~245,000 reads written eight times (a multi-member gzip file, as `cat a.gz b.gz` makes)."""
    p = tmp_path_factory.mktemp("big") / "big.fastq.gz"
    reads = gzip.open(ADIR / "reads_R1.fastq.gz").read()
    member = gzip.compress(reads * 150, compresslevel=1)
    with open(p, "wb") as fh:
        for _ in range(8):
            fh.write(member)
    return p


def _descendants(pid: int) -> list:
    """Process IDs below ``pid`` (Linux /proc)."""
    parents = {}
    for st in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = st.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(st.parent.name)] = int(fields[1])
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        kids = [c for c, pp in parents.items() if pp == q]
        out.extend(kids)
        todo.extend(kids)
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_interrupted_parallel_analyze_leaves_nothing(tmp_path, big_fastq, sig):
    """``timeout -s TERM`` (or Ctrl-C) signals the whole process group while ``analyze -j 2``
    counts: the temporary output is removed, the workers end quietly, one line is printed."""
    import os
    import signal
    import time

    import shutil

    run = tmp_path / "run"
    cmd = [sys.executable, "-c", "from primo.cli import entry; entry()", "analyze", "--pool",
           str(POOL), str(big_fastq), "-o", "out", "-j", "2", "--chunk-bytes", "32K"]
    for attempt in range(3):
        # a run that finished its counting before the signal reached it is not what this test
        # is about (a fast machine): it is repeated, at most twice
        if run.exists():
            shutil.rmtree(run)
        run.mkdir()
        # SIGINT back to its default in the child: a shell that starts a job in the background
        # (as CI may run the suite) hands it SIGINT ignored, and Python then keeps ignoring it
        p = subprocess.Popen(cmd, cwd=run, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            # wait until the workers count (a process being started, e.g. the forkserver, that
            # gets the signal while Python itself starts up prints a fatal error of its own)
            deadline = time.time() + 120
            while not (any(q.name.endswith(".tmp") for q in run.iterdir())
                       and len(_descendants(p.pid)) >= 4):   # forkserver, tracker, 2 workers
                assert p.poll() is None and time.time() < deadline, "analyze ended before counting"
                time.sleep(0.02)
            time.sleep(0.5)   # the workers' imports are done (a signal during one prints)
            assert p.poll() is None, "analyze ended before it was signalled"
            os.killpg(p.pid, getattr(signal, sig))
            _, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        if not (p.returncode == 0 and (run / "out" / "counts.csv.gz").exists()):
            break
    assert p.returncode == (143 if sig == "SIGTERM" else 130), err
    assert "Traceback" not in err and "leaked" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"primo analyze: error: {'terminated' if sig == 'SIGTERM' else 'aborted'}; "
                     "outputs that were not finished were not written"], err
    assert list(run.iterdir()) == []
