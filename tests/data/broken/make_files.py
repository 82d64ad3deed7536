"""Write the broken-input collection (run from the repository root; deterministic).

    python tests/data/broken/make_files.py

Each folder's README.md says what each file is and what primo must answer; the cases themselves
are in tests/test_broken_inputs.py.
"""

import gzip
import os
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).parent
DATA = HERE.parent


def _w(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)


def csv_files():
    d = HERE / "csv"
    pairs = (DATA / "oligos" / "pairs.csv").read_text().splitlines()
    # a sequence with an unquoted comma and a third field: the third field would be lost
    rows = pairs[:4]
    rows[2] = rows[2] + ",GATTACA"
    _w(d / "third_field.csv", "\n".join(rows) + "\n")
    # empty trailing fields (spreadsheet exports) are fine
    _w(d / "trailing_empty_fields.csv", "\n".join([pairs[0]] + [r + ",," for r in pairs[1:4]])
       + "\n")
    _w(d / "binary.csv", b"ImageID,Sequence\n" + bytes(range(128, 256)) * 2 + b"\n")
    header, *body = pairs[:4]
    _w(d / "fullwidth_index.csv", "\n".join(
        [header + ",Index"] + [r + "," + str(i) for i, r in enumerate(body[:2])]
        + [body[2] + ",\uff12"]) + "\n")


def barcode_files():
    d = HERE / "barcodes"
    _w(d / "fullwidth_indices.txt", "1\n\uff11\uff12\n")
    _w(d / "underscore_index.txt", "5\n1_000\n")
    _w(d / "plus_index.txt", "+7\n")
    bc = "CTGATAGTAGATCATAGATGACACGATGAT"
    _w(d / "decode_empty_line.txt", f"{bc}\n\n{bc}\n")


def fastq_files():
    d = HERE / "fastq"
    with gzip.open(DATA / "analyze" / "reads_R1.fastq.gz", "rt") as fh:
        lines = [next(fh).rstrip("\n") for _ in range(4 * 40)]
    _w(d / "reads_40.fastq", "\n".join(lines) + "\n")
    spaced = [(" " * len(ln) if k % 4 == 3 else ln) for k, ln in enumerate(lines)]
    _w(d / "quality_spaces.fastq", "\n".join(spaced) + "\n")


def hdf5_files():
    from primo.features.store import write_features

    d = HERE / "hdf5"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(15)
    X = rng.normal(size=(12, 4)).astype(np.float32)
    ids = [f"doc{i:02d}" for i in range(12)]
    good = d / "good.h5"
    write_features(good, ids, X, {"extractor": "broken-collection"}, chunk_rows=4)
    raw = good.read_bytes()
    _w(d / "truncated.h5", raw[: len(raw) // 2])
    nan = d / "nan_row.h5"
    _w(nan, raw)
    with h5py.File(nan, "r+") as f:
        f["features"][7, 2] = np.nan
    short = d / "ids_short.h5"
    _w(short, raw)
    with h5py.File(short, "r+") as f:
        f["ids"].resize((9,))
    for name, dtype in [("float64_unchunked.h5", "float64"), ("int_unchunked.h5", "int16")]:
        p = d / name
        if p.exists():
            p.unlink()
        with h5py.File(p, "w") as f:
            f.attrs.update({"primo_format": "primo-features", "format_version": 1, "dim": 4,
                            "n_rows": 12, "metadata": '{"extractor": "broken-collection"}'})
            f.create_dataset("features", data=(X * 10).astype(dtype))
            f.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype())
    other = d / "not_a_store.h5"
    if other.exists():
        other.unlink()
    with h5py.File(other, "w") as f:
        f.create_dataset("embeddings", data=X)
    os.utime(good)


if __name__ == "__main__":
    csv_files()
    barcode_files()
    fastq_files()
    hdf5_files()
