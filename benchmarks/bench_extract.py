#!/usr/bin/env python
"""Benchmark `primo extract` and the feature store against their plain peers, side by side.

1. VGG16-FC2 throughput (images/s) on this machine's CPU (or GPU if TensorFlow sees one):
   * peer: plain Keras - ``VGG16`` -> ``fc2`` model, ``preprocess_input``, ``predict_on_batch`` on a
     ready uint8 array (no decoding, no storage);
   * primo: ``extract_images`` on JPEG files (decode, EXIF, resize, preprocess, forward pass, append
     to the feature store), the model built beforehand.
   Random weights (``--weights none``): the speed is the same as with ImageNet weights.
2. The bundled ``fashion-embed`` extractor (Fashion-MNIST, 64-d) throughput (images/s):
   * peer: the same Keras network, ``predict`` on the decoded images (a ready float array in
     memory, the extractor's own input: 28 x 28 grayscale scaled to [0, 1]);
   * primo: ``extract_images`` on PNG files of those images (decode, resize check, the network,
     append to the feature store), and ``extract_arrays`` on the uint8 array (what ``primo extract
     --dataset fashion-mnist`` runs);
   images from ``--fashion-dir`` (Fashion-MNIST IDX files, test split) or primo's bundled demo
   subset (2,000 test images).
3. Feature store write and chunked read rates (MB/s, rows/s) for an N x 4096 float32 matrix against
   ``numpy.save`` / ``numpy.load`` of the same matrix (files in the page cache: this measures the
   software, not the disk).

    python benchmarks/bench_extract.py [--images 64] [--batch-size 32] [--rows 40000] [--dir /tmp]
        [--fashion-images 2000] [--fashion-dir DIR]
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PRIMO_QUIET", "1")

import numpy as np  # noqa: E402


def bench_vgg16(n_images: int, batch_size: int, workdir: Path, repeats: int = 2):
    import keras
    import tensorflow as tf
    from PIL import Image

    from primo.features.extract import extract_images
    from primo.features.extractors import VGG16Extractor

    rng = np.random.default_rng(0)
    # photo-like inputs: 320 x 240 JPEGs of smooth random colour fields
    imgdir = workdir / "jpgs"
    imgdir.mkdir()
    for i in range(n_images):
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((320, 240), Image.BICUBIC).save(imgdir / f"img{i:05d}.jpg", quality=90)
    x = rng.integers(0, 255, (n_images, 224, 224, 3), dtype=np.uint8)
    dev = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"

    # peer: plain Keras on a ready array; primo: files -> store (model built beforehand).
    # Alternate the two, best of `repeats`, so that a busy machine hurts both alike.
    base = keras.applications.VGG16(weights=None)
    fc2 = keras.Model(base.inputs, base.get_layer("fc2").output)
    fc2.predict_on_batch(keras.applications.vgg16.preprocess_input(x[:batch_size].astype("float32")))
    ex = VGG16Extractor("none")
    ex(x[:batch_size])  # warm-up (graph tracing)
    peer = ours = 0.0
    for rep in range(repeats):
        t = time.perf_counter()
        for a in range(0, n_images, batch_size):
            fc2.predict_on_batch(keras.applications.vgg16.preprocess_input(x[a:a + batch_size].astype("float32")))
        peer = max(peer, n_images / (time.perf_counter() - t))
        out = workdir / f"vgg{rep}.h5"
        t = time.perf_counter()
        res = extract_images([imgdir], out, ex, batch_size=batch_size)
        ours = max(ours, res.n_written / (time.perf_counter() - t))
    print(f"VGG16-FC2 on {dev}, {n_images} images, batch {batch_size}, best of {repeats}:")
    print(f"  plain Keras predict (array in memory): {peer:8.2f} images/s")
    print(f"  primo extract (JPEG files -> store):   {ours:8.2f} images/s")
    print(f"  ratio primo / Keras: {ours / peer:.2f}")


def bench_fashion(n_images: int, workdir: Path, repeats: int = 2, fashion_dir=None,
                  batch_size: int | None = None):
    from PIL import Image

    from primo.features.datasets import demo_arrays, fashion_mnist_ids, load_fashion_mnist
    from primo.features.embed import load_embedder
    from primo.features.extract import extract_arrays, extract_images
    from primo.features.extractors import get_extractor
    from primo.features.images import load_image

    if fashion_dir:
        images, _ = load_fashion_mnist("test", fashion_dir, limit=n_images)
        ids = fashion_mnist_ids("test", range(len(images)))
        source = f"Fashion-MNIST test split ({fashion_dir})"
    else:
        ids, images, _ = demo_arrays()
        ids, images = ids[:n_images], images[:n_images]
        source = "primo's bundled demo subset"
    n = len(images)
    pngdir = workdir / "pngs"
    pngdir.mkdir()
    for i, im in zip(ids, images):
        Image.fromarray(im).save(pngdir / f"{i}.png")
    ex = get_extractor("fashion-embed")
    bs = int(batch_size or ex.default_batch_size)
    model, _ = load_embedder()  # the Keras network the extractor runs (the same, cached)
    # the peer's input: the images as primo decodes them, as the network takes them
    decoded = np.stack([load_image(pngdir / f"{i}.png", ex.input_size, mode=ex.image_mode)
                        for i in ids])
    assert np.array_equal(decoded, images)
    x = (decoded.astype(np.float32) / 255.0)[..., None]
    model.predict(x[:bs], batch_size=bs, verbose=0)  # warm-up (graph tracing)
    ex(images[:bs])
    peer = files = arrays = 0.0
    for rep in range(repeats):
        t = time.perf_counter()
        model.predict(x, batch_size=bs, verbose=0)
        peer = max(peer, n / (time.perf_counter() - t))
        t = time.perf_counter()
        res = extract_images([pngdir], workdir / f"fe-files{rep}.h5", ex, batch_size=bs)
        files = max(files, res.n_written / (time.perf_counter() - t))
        t = time.perf_counter()
        res = extract_arrays(images, ids, workdir / f"fe-arrays{rep}.h5", ex, batch_size=bs)
        arrays = max(arrays, res.n_written / (time.perf_counter() - t))
    print(f"fashion-embed (64-d) on {os.cpu_count()} CPU cores, {n} images of {source}, "
          f"batch {bs}, best of {repeats}:")
    print(f"  plain Keras predict (decoded images in memory): {peer:8.0f} images/s")
    print(f"  primo extract (PNG files -> store):             {files:8.0f} images/s")
    print(f"  primo extract (uint8 array -> store):           {arrays:8.0f} images/s")
    print(f"  ratio primo / Keras: files {files / peer:.2f}, array {arrays / peer:.2f}")


def bench_store(rows: int, dim: int, workdir: Path, chunk: int):
    from primo.features.store import FeatureStore

    X = np.random.default_rng(1).random((rows, dim), dtype=np.float32)
    X[X < 0.7] = 0  # FC2-like sparsity (no compression is used, so it does not matter for speed)
    ids = [f"doc{i:08d}" for i in range(rows)]
    mb = X.nbytes / 1e6

    def timed(fn):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    npy = workdir / "x.npy"
    h5 = workdir / "x.h5"

    def np_write():
        np.save(npy, X)

    def h5_write():
        if h5.exists():
            h5.unlink()
        with FeatureStore.create(h5, dim) as fs:
            for a in range(0, rows, chunk):
                fs.append(ids[a:a + chunk], X[a:a + chunk])

    def np_read():
        np.load(npy).sum()

    def np_read_chunked():
        m = np.load(npy, mmap_mode="r")
        for a in range(0, rows, chunk):
            np.asarray(m[a:a + chunk]).sum()

    def h5_read():
        with FeatureStore.open(h5) as fs:
            for _, c in fs.iter_chunks(chunk):
                c.sum()

    tw_np, tw_h5 = timed(np_write), timed(h5_write)
    tr_np, tr_np_c, tr_h5 = timed(np_read), timed(np_read_chunked), timed(h5_read)
    print(f"feature store vs numpy, {rows} x {dim} float32 ({mb:.0f} MB), chunks of {chunk} rows:")
    print(f"  write  numpy.save:               {mb / tw_np:8.0f} MB/s {rows / tw_np:10.0f} rows/s")
    print(f"  write  FeatureStore.append:      {mb / tw_h5:8.0f} MB/s {rows / tw_h5:10.0f} rows/s"
          f"   ratio {tw_np / tw_h5:.2f}")
    print(f"  read   numpy.load (whole):       {mb / tr_np:8.0f} MB/s {rows / tr_np:10.0f} rows/s")
    print(f"  read   numpy.load mmap, chunked: {mb / tr_np_c:8.0f} MB/s {rows / tr_np_c:10.0f} rows/s")
    print(f"  read   FeatureStore.iter_chunks: {mb / tr_h5:8.0f} MB/s {rows / tr_h5:10.0f} rows/s"
          f"   ratio vs numpy.load {tr_np / tr_h5:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rows", type=int, default=40000)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--chunk", type=int, default=4096, help="rows per append / read")
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--skip-vgg16", action="store_true")
    ap.add_argument("--skip-store", action="store_true")
    ap.add_argument("--fashion-images", type=int, default=2000,
                    help="images for the fashion-embed comparison")
    ap.add_argument("--fashion-dir", default=None,
                    help="Fashion-MNIST IDX files (test split; default: primo's bundled 2,000 "
                         "demo images)")
    ap.add_argument("--fashion-batch-size", type=int, default=None,
                    help="fashion-embed batch (default: the extractor's, 512)")
    ap.add_argument("--skip-fashion", action="store_true")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_extract.", dir=args.dir))
    try:
        if not args.skip_store:
            bench_store(args.rows, args.dim, work, args.chunk)
        if not args.skip_fashion:
            bench_fashion(args.fashion_images, work, args.repeats, args.fashion_dir,
                          args.fashion_batch_size)
        if not args.skip_vgg16:
            bench_vgg16(args.images, args.batch_size, work, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
