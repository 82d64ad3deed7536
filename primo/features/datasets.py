"""Data sets primo learns from offline: Fashion-MNIST and the bundled demo subset.

Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, Zalando SE, MIT licence) comes from the Debian package
``dataset-fashion-mnist``, which installs the original IDX files under
``/usr/share/datasets/fashion-mnist/``; any directory holding the same files works.

IDX format (http://yann.lecun.com/exdb/mnist/)
----------------------------------------------
Big-endian. Magic number: two zero bytes, a type byte (``0x08`` = unsigned byte) and the number of
dimensions; then one 32-bit size per dimension; then the data, row-major. Images are
``<split>-images-idx3-ubyte`` (N x 28 x 28), labels ``<split>-labels-idx1-ubyte`` (N), where split
is ``train`` (60,000) or ``t10k`` (10,000, "test" here); each file may be gzip-compressed
(``.gz``, detected by content). Pixels are 0 (background, black) to 255 (garment, white).

The demo subset
---------------
``primo/data/fashion_demo.npz`` holds 2,000 images of the Fashion-MNIST *test* split (200 per class,
chosen with a fixed seed by ``tools/make_demo_data.py``) with keys ``images`` (uint8, 2000 x 28 x 28),
``labels`` (uint8), ``index`` (the row in the test split). Their IDs are ``fmnist-test-NNNNN``.
:func:`demo_images` writes them as PNG files for ``primo demo`` and for tests that need image files.
The MIT licence and attribution are in ``primo/data/FASHION-MNIST-LICENSE``.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

__all__ = ["FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES", "load_fashion_mnist", "read_idx",
           "fashion_mnist_ids", "demo_arrays", "demo_images", "data_path"]

#: where Debian's dataset-fashion-mnist installs the IDX files (override with $PRIMO_FASHION_MNIST)
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")

_SPLITS = {"train": "train", "test": "t10k"}
_INSTALL_HINT = "install it with `apt-get install dataset-fashion-mnist` or give the directory (`fmnist_dir`)"


def data_path(name: str) -> Path:
    """Path of a file bundled in ``primo/data/``."""
    return Path(str(resources.files("primo") / "data" / name))


def read_idx(path) -> np.ndarray:
    """Read one IDX file (plain or gzip) as a numpy array; bad files raise DataError naming them."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read IDX file ({e})", path=path,
                        hint="the file is damaged; reinstall dataset-fashion-mnist") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError("not an IDX file (bad magic number)", path=path,
                        hint="expected an MNIST-style *-ubyte file")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = raw[2], raw[3]
    if code not in dtypes or ndim < 1:
        raise DataError(f"unsupported IDX data type 0x{code:02x} / {ndim} dimensions", path=path)
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError("IDX file is truncated (header)", path=path,
                        hint="reinstall dataset-fashion-mnist")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dt = np.dtype(dtypes[code])
    need = int(np.prod(shape)) * dt.itemsize
    if len(raw) - header < need:
        raise DataError(f"IDX file is truncated: {len(raw) - header} data bytes, shape {shape} needs "
                        f"{need}", path=path, hint="reinstall dataset-fashion-mnist")
    return np.frombuffer(raw, dtype=dt, count=int(np.prod(shape)), offset=header).reshape(shape) \
        .astype(dt.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        p = directory / name
        if p.is_file():
            return p
    # some mirrors use dots: train-images.idx3-ubyte
    alt = stem.replace("-idx", ".idx")
    for name in (alt, alt + ".gz"):
        p = directory / name
        if p.is_file():
            return p
    return None


def load_fashion_mnist(split: str = "train", directory=None, limit: int | None = None):
    """Fashion-MNIST images and labels.

    Parameters
    ----------
    split : {"train", "test"}
    directory : path, optional
        Directory with the IDX files (default: ``$PRIMO_FASHION_MNIST`` or
        ``/usr/share/datasets/fashion-mnist``).
    limit : int, optional
        Only the first ``limit`` images.

    Returns
    -------
    images : uint8 array (N, 28, 28)
    labels : uint8 array (N,)
    """
    if split not in _SPLITS:
        raise UsageError(f"unknown Fashion-MNIST split {split!r}", hint="use 'train' or 'test'")
    directory = Path(directory or os.environ.get("PRIMO_FASHION_MNIST") or FASHION_MNIST_DIR)
    if not directory.is_dir():
        raise UsageError(f"Fashion-MNIST directory {directory} does not exist", hint=_INSTALL_HINT)
    prefix = _SPLITS[split]
    ip = _find(directory, f"{prefix}-images-idx3-ubyte")
    lp = _find(directory, f"{prefix}-labels-idx1-ubyte")
    if ip is None or lp is None:
        missing = f"{prefix}-images-idx3-ubyte" if ip is None else f"{prefix}-labels-idx1-ubyte"
        raise UsageError(f"Fashion-MNIST {split} split not found in {directory} (no {missing}[.gz])",
                         hint=_INSTALL_HINT)
    images, labels = read_idx(ip), read_idx(lp)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"expected N x 28 x 28 unsigned bytes, got shape {images.shape}", path=ip)
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{len(labels)} labels for {len(images)} images", path=lp,
                        hint="the image and label files are from different splits")
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise DataError(f"label {int(labels.max())} out of range 0-9", path=lp)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def fashion_mnist_ids(split: str, index) -> list:
    """Document IDs of Fashion-MNIST rows: ``fmnist-train-00042``, ``fmnist-test-01234``."""
    return [f"fmnist-{split}-{int(i):05d}" for i in index]


def demo_arrays():
    """The bundled demo subset: ``(ids, images uint8 (N, 28, 28), labels uint8 (N,))``."""
    p = data_path("fashion_demo.npz")
    if not p.is_file():
        raise UsageError(f"the bundled demo data {p} is missing",
                         hint="reinstall primo or run tools/make_demo_data.py")
    with np.load(p, allow_pickle=False) as z:
        images, labels, index = z["images"], z["labels"], z["index"]
    return fashion_mnist_ids("test", index), images, labels


def demo_images(out_dir, n: int | None = None, size: int | None = None):
    """Write the demo subset as PNG files into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Created if needed. Files are ``<ID>.png`` (8-bit grayscale), plus ``labels.csv``
        (ImageID, Label, Class).
    n : int, optional
        Only the first ``n`` images (they are ordered so that any prefix is class-balanced).
    size : int, optional
        Resize to ``size`` x ``size`` (default: the original 28 x 28).

    Returns
    -------
    paths : list of Path
    labels : numpy int array
    """
    from PIL import Image

    ids, images, labels = demo_arrays()
    if n is not None:
        ids, images, labels = ids[:n], images[:n], labels[:n]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in zip(ids, images):
        p = out / f"{i}.png"
        im = Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8))
        if size:
            im = im.resize((size, size), Image.BILINEAR)
        im.save(p, optimize=False)
        paths.append(p)
    with open(out / "labels.csv", "w", encoding="utf-8", newline="") as fh:
        fh.write("ImageID,Label,Class\n")
        for i, lab in zip(ids, labels):
            fh.write(f"{i},{int(lab)},{FASHION_MNIST_CLASSES[int(lab)]}\n")
    return paths, np.asarray(labels, dtype=np.int64)
