"""Fashion-MNIST IDX reading, the bundled demo subset, the shipped embedder, synthetic features."""

import gzip
import struct

import numpy as np
import pytest

from primo.errors import DataError, UsageError
from primo.features.datasets import (FASHION_MNIST_DIR, demo_arrays, demo_images, load_fashion_mnist,
                                     read_idx)
from primo.evaluation.neighbors import map_at_k
from primo.features.synthetic import SyntheticFC2, pair_share_within, write_synthetic
from primo.features.store import FeatureStore
from primo.parallel import get_mapper


def _write_idx(path, arr, gz=False):
    arr = np.asarray(arr, np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def _fake_split(d, prefix, n, gz):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (n, 28, 28))
    labs = rng.integers(0, 10, n)
    ext = ".gz" if gz else ""
    _write_idx(d / f"{prefix}-images-idx3-ubyte{ext}", imgs, gz)
    _write_idx(d / f"{prefix}-labels-idx1-ubyte{ext}", labs, gz)
    return imgs, labs


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_a_directory(tmp_path, gz):
    imgs, labs = _fake_split(tmp_path, "t10k", 9, gz)
    x, y = load_fashion_mnist("test", tmp_path)
    assert np.array_equal(x, imgs) and np.array_equal(y, labs) and x.dtype == np.uint8
    x, y = load_fashion_mnist("test", tmp_path, limit=4)
    assert len(x) == len(y) == 4


def test_fashion_mnist_errors(tmp_path):
    with pytest.raises(UsageError, match="apt-get install dataset-fashion-mnist") as e:
        load_fashion_mnist("train", tmp_path)
    assert "train-images-idx3-ubyte" in str(e.value) and str(tmp_path) in str(e.value)
    with pytest.raises(UsageError, match="does not exist.*`fmnist_dir`"):
        load_fashion_mnist("train", tmp_path / "nowhere")
    with pytest.raises(UsageError, match="split"):
        load_fashion_mnist("validation", tmp_path)
    imgs, _ = _fake_split(tmp_path, "train", 5, False)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated") as e:
        load_fashion_mnist("train", tmp_path)
    assert str(p) in str(e.value)
    p.write_bytes(b"GIF89a....")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(p)


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_installed_fashion_mnist_loads():
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and np.bincount(y).tolist() == [1000] * 10


def test_demo_subset(tmp_path):
    ids, images, labels = demo_arrays()
    assert images.shape == (2000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [200] * 10
    assert np.bincount(labels[:50]).tolist() == [5] * 10  # prefixes are balanced
    assert ids[0].startswith("fmnist-test-") and len(set(ids)) == 2000
    paths, labs = demo_images(tmp_path, n=12)
    assert len(paths) == 12 and all(p.suffix == ".png" and p.exists() for p in paths)
    assert (tmp_path / "labels.csv").read_text().splitlines()[0] == "ImageID,Label,Class"
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(paths[3])), images[3])
    assert (tmp_path / "labels.csv").read_text().count("\n") == 13


def test_shipped_embedding_beats_pixels_on_demo_subset():
    """The bundled weights: mAP@10 (demo images vs each other) clearly above raw pixels."""
    from primo.features.embed import embed, load_embedder

    _, meta = load_embedder()
    assert meta["architecture"] and meta["map_at_10"]["embedding"] > meta["map_at_10"]["pixels"]
    _, images, labels = demo_arrays()
    E = embed(images)
    assert E.shape == (2000, 64) and np.allclose(np.linalg.norm(E, axis=1), 1, atol=1e-4)
    P = images.reshape(len(images), -1).astype(np.float32) / 255
    m_e = map_at_k(E, labels, E, labels, 10, exclude_self=True)
    m_p = map_at_k(P, labels, P, labels, 10, exclude_self=True)
    assert m_e > m_p + 0.03, (m_e, m_p)


def test_synthetic_is_sparse_calibrated_and_deterministic():
    g = SyntheticFC2(3000, dim=512, n_clusters=30, similar_share=0.02, threshold=75, seed=4)
    ids, X, labels = g.generate()
    assert X.shape == (3000, 512) and X.dtype == np.float32 and (X >= 0).all()
    assert abs((X == 0).mean() - 0.75) < 0.02
    assert pair_share_within(X, 75) == pytest.approx(0.02, rel=0.25)
    assert ids[0] == "syn-0000000" and labels.max() < 30
    # same seed -> same data, whatever the chunk size or the number of processes
    g2 = SyntheticFC2(3000, dim=512, n_clusters=30, similar_share=0.02, seed=4)
    assert g2.scale == g.scale
    with get_mapper(2) as m:
        parts = list(g2.iter_chunks(2048, mapper=m))
    assert np.array_equal(np.concatenate([p[1] for p in parts]), X)
    assert np.array_equal(np.concatenate([p[2] for p in parts]), labels)
    assert not np.array_equal(SyntheticFC2(50, dim=512, n_clusters=30, seed=5, scale=1.0).generate()[1],
                              SyntheticFC2(50, dim=512, n_clusters=30, seed=4, scale=1.0).generate()[1])
    with pytest.raises(UsageError, match="similar share"):
        SyntheticFC2(10, similar_share=1.5)


def test_write_synthetic_store(tmp_path):
    p = tmp_path / "syn.h5"
    info = write_synthetic(p, 2500, dim=256, n_clusters=10, similar_share=0.05, seed=1, chunksize=1024)
    with FeatureStore.open(p) as fs:
        assert fs.n == 2500 and fs.dim == 256 and fs.labels is not None
        assert fs.metadata["synthetic"]["scale"] == pytest.approx(info["scale"])
        assert fs.validate()["n"] == 2500
    with pytest.raises(UsageError, match="already exists"):
        write_synthetic(p, 10, dim=16)
