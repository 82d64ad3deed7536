"""Running an extractor over a collection into a feature store (what ``primo extract`` does).

Output handling
---------------
A new extraction writes ``F.h5.partial`` beside the output and renames it to ``F.h5`` when it is
complete, so an existing ``F.h5`` is replaced (``overwrite=True``) only by a finished store.
Rows are committed batch by batch (see :mod:`primo.features.store`), so an interrupted run leaves a
valid ``F.h5.partial``; ``resume=True`` continues it, skipping the documents already in it. On a
finished ``F.h5``, ``resume=True`` appends the documents that are not yet in it (in place, each
batch committed). Without either flag an existing output (or partial output) is an error.

Resuming checks that the store was made by the same extractor (name, dimension, weights and their
sha256, input size, preprocessing): mixing feature spaces in one store is refused.

Skipped inputs (undecodable images, missing listed files) are warned about on stderr and recorded in
the store (``FeatureStore.skipped`` and ``metadata["n_skipped"]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from ..progress import progress
from .extractors import Extractor, get_extractor
from .images import collect_images, iter_image_batches
from .store import FeatureStore

__all__ = ["ExtractResult", "extract_images", "extract_arrays", "extract_fashion_mnist", "partial_path"]


@dataclasses.dataclass
class ExtractResult:
    """What an extraction did."""

    path: Path
    n_total: int            # rows in the store afterwards
    n_written: int          # rows written by this run
    n_existing: int         # inputs skipped because their ID was already in the store
    n_skipped: int          # inputs that could not be read (this run)
    dim: int
    extractor: str
    seconds: float
    skipped: list = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        rate = self.n_written / self.seconds if self.seconds > 0 else 0.0
        parts = [f"wrote {self.n_written} {self.dim}-d vectors ({self.extractor}) to {self.path}",
                 f"{self.n_total} in the store"]
        if self.n_existing:
            parts.append(f"{self.n_existing} already present")
        if self.n_skipped:
            parts.append(f"{self.n_skipped} input{'s' if self.n_skipped != 1 else ''} skipped")
        parts.append(f"{rate:.1f} images/s")
        return "; ".join(parts)


def partial_path(output) -> Path:
    """Where an unfinished extraction into ``output`` lives."""
    output = Path(output)
    return output.with_name(output.name + ".partial")


_COMPAT_KEYS = ("extractor", "dim", "weights", "weights_sha256", "input_size", "image_mode",
                "preprocessing")


def _open_target(output: Path, extractor: Extractor, meta: dict, resume: bool, overwrite: bool,
                 labels: bool, chunk_rows=None):
    """-> (store, final_path or None): the store to append to, and where to rename it when done."""
    if resume and overwrite:
        raise UsageError("resume and overwrite exclude each other")
    part = partial_path(output)
    if not output.parent.exists() and str(output.parent):
        raise UsageError(f"cannot write {output}: directory {output.parent} does not exist")
    if output.is_dir():
        raise UsageError(f"output {output} is a folder", hint="give a file name such as features.h5")
    if overwrite:
        if part.exists():
            part.unlink()
    elif resume:
        target = part if part.exists() else (output if output.exists() else None)
        if target is not None:
            fs = FeatureStore.open(target, "r+")
            try:
                _check_compatible(fs, meta, target)
                if labels and not fs.has_labels:
                    raise UsageError(f"{target} has no labels; cannot add labelled documents",
                                     hint="write a new store with `overwrite`")
            except BaseException:
                fs.close()
                raise
            return fs, (output if target == part else None)
    else:
        if part.exists():
            raise UsageError(f"an interrupted extraction left {part}",
                             hint="`resume` continues it, `overwrite` starts again")
        if output.exists():
            raise UsageError(f"{output} already exists",
                             hint="`resume` adds the images not yet in it, `overwrite` replaces it")
    fs = FeatureStore.create(part, extractor.dim, meta, chunk_rows=chunk_rows, labels=labels,
                             overwrite=True)
    return fs, output


def _check_compatible(fs: FeatureStore, meta: dict, path):
    old = fs.metadata
    for k in _COMPAT_KEYS:
        a, b = old.get(k), meta.get(k)
        if k == "dim":
            a = fs.dim
        if a is not None and b is not None and a != b:
            raise UsageError(f"{path} was made with {k}={a!r}, this run uses {k}={b!r}",
                             hint="use the same `model`/`weights` as the store, or `overwrite`")


@contextlib.contextmanager
def _removed_if_empty_on_error(fs: FeatureStore, output: Path):
    """On an error: close the store, and delete it if it is a new partial file with no rows."""
    try:
        yield
    except BaseException:
        empty_new = fs.n == 0 and fs.path != output
        p = fs.path
        fs.close()
        if empty_new:
            p.unlink(missing_ok=True)
        raise


def _finish(fs: FeatureStore, final: Path | None) -> Path:
    """Close the store; rename a finished OUT.partial to OUT."""
    path = fs.path
    fs.close()
    if final is not None and path != final:
        os.replace(path, final)
        return final
    return path


def extract_images(inputs, output, model="vgg16", *, weights=None, batch_size: int | None = None,
                   ids: str = "stem", resume: bool = False, overwrite: bool = False,
                   resample: str = "bilinear", mapper=None, input_size: int | None = None,
                   input_range: str | None = None, invert: bool = False,
                   chunk_rows: int | None = None) -> ExtractResult:
    """Extract features of image files / folders / list files into a feature store.

    Parameters
    ----------
    inputs : list of paths
        Image files, folders (recursive) and list files (see :mod:`primo.features.images`).
    output : path
        The feature store (``.h5``).
    model : str or Extractor
        ``vgg16`` (default), ``resnet50``, ``mobilenet_v3_large``, ``efficientnet_b0``,
        ``hub:PATH|HANDLE``, ``fashion-embed``, ``pixels[:SIZE[:rgb]]``, or a built
        :class:`~primo.features.extractors.Extractor`.
    weights : str, optional
        See :func:`~primo.features.extractors.get_extractor` (``"none"``: random weights, testing).
    batch_size : int, optional
        Images per forward pass (default: the extractor's).
    ids : {"stem", "path"}
        Document IDs: file stem, or path relative to the folder given.
    resume, overwrite : bool
        See the module docstring.
    resample : str
        Resize filter (``bilinear``, ``nearest`` like Keras ``load_img``, ``bicubic``, ``lanczos``).
    mapper : primo.parallel.Mapper, optional
        Decode images in worker processes (a few batches ahead of the network).
    input_size : hub modules and the resizable Keras applications; input_range : hub modules;
        invert : fashion-embed only.
    chunk_rows : int, optional
        HDF5 chunk rows of a new store.
    """
    t0 = time.time()
    output = Path(output)
    refs, missing = collect_images(inputs, ids=ids)
    extractor = model if isinstance(model, Extractor) else get_extractor(
        model, weights, input_size=input_size, input_range=input_range, invert=invert)
    bs = int(batch_size or extractor.default_batch_size)
    if bs < 1:
        raise UsageError(f"batch size must be at least 1, got {bs}", option="batch_size")
    meta = extractor.metadata()
    meta.update(resize=resample, document_ids=ids)
    fs, final = _open_target(output, extractor, meta, resume, overwrite, labels=False,
                             chunk_rows=chunk_rows)
    n_written = n_existing = 0
    skipped = list(missing)
    with _removed_if_empty_on_error(fs, output):
        existing = fs.existing_ids()
        todo = [r for r in refs if r.doc_id not in existing]
        n_existing = len(refs) - len(todo)
        source = {r.doc_id: os.path.abspath(r.path) for r in todo}  # recorded for result pages
        done_skips = {p for p, _ in fs.skipped}
        fs.add_skipped([(p, r) for p, r in missing if p not in done_skips])
        bar = progress(total=len(todo), desc=f"extract {extractor.name}", unit="img")
        try:
            for doc_ids, images, bad in iter_image_batches(
                    todo, bs, extractor.input_size, mode=extractor.image_mode, resample=resample,
                    mapper=mapper):
                if bad:
                    skipped.extend(bad)
                    fs.add_skipped([(p, r) for p, r in bad if p not in done_skips])
                if doc_ids:
                    fs.append(doc_ids, extractor(images), paths=[source[d] for d in doc_ids])
                    n_written += len(doc_ids)
                bar.update(len(doc_ids) + len(bad))
        finally:
            bar.close()
        if fs.n == 0:
            raise DataError(f"none of the {len(refs)} inputs could be read as an image "
                            f"({len(skipped)} skipped)",
                            path=skipped[0][0] if skipped else None,
                            hint="see the warnings above; give image files (JPEG, PNG, ...)")
        fs.update_metadata(n_skipped=len(fs.skipped), resize=resample, document_ids=ids)
        n_total, dim = fs.n, fs.dim
    path = _finish(fs, final)
    return ExtractResult(path, n_total, n_written, n_existing, len(skipped), dim, extractor.name,
                         time.time() - t0, skipped)


def _fit_arrays(images: np.ndarray, extractor: Extractor, resample: str) -> np.ndarray:
    """Resize / recolour a uint8 batch (N, H, W) or (N, H, W, 3) to what the extractor takes."""
    from PIL import Image

    from .images import _resample

    w, h = extractor.input_size
    want_rgb = extractor.image_mode == "RGB"
    if images.shape[1:3] == (h, w) and ((images.ndim == 4) == want_rgb):
        return images
    flt = _resample(resample)
    out = np.empty((len(images), h, w) + ((3,) if want_rgb else ()), dtype=np.uint8)
    for k, img in enumerate(images):
        im = Image.fromarray(np.ascontiguousarray(img))
        im = im.convert("RGB" if want_rgb else "L")
        if im.size != (w, h):
            im = im.resize((w, h), flt)
        out[k] = np.asarray(im)
    return out


def extract_arrays(images, doc_ids, output, model="pixels", *, labels=None, weights=None,
                   batch_size: int | None = None, resume: bool = False, overwrite: bool = False,
                   resample: str = "bilinear", metadata: dict | None = None,
                   desc: str = "extract", chunk_rows: int | None = None) -> ExtractResult:
    """Extract features of in-memory uint8 images (N, H, W[, 3]) with given IDs (and labels)."""
    t0 = time.time()
    output = Path(output)
    images = np.asarray(images)
    doc_ids = [str(i) for i in doc_ids]
    if len(doc_ids) != len(images):
        raise UsageError(f"{len(doc_ids)} IDs for {len(images)} images")
    extractor = model if isinstance(model, Extractor) else get_extractor(model, weights)
    bs = int(batch_size or extractor.default_batch_size)
    if bs < 1:
        raise UsageError(f"batch size must be at least 1, got {bs}", option="batch_size")
    meta = extractor.metadata()
    meta.update(resize=resample, **(metadata or {}))
    fs, final = _open_target(output, extractor, meta, resume, overwrite, labels=labels is not None,
                             chunk_rows=chunk_rows)
    n_written = 0
    with _removed_if_empty_on_error(fs, output):
        existing = fs.existing_ids()
        todo = np.array([k for k, i in enumerate(doc_ids) if i not in existing], dtype=np.int64)
        n_existing = len(doc_ids) - len(todo)
        labels = None if labels is None else np.asarray(labels).astype(np.int64)
        bar = progress(total=len(todo), desc=f"{desc} {extractor.name}", unit="img")
        try:
            for a in range(0, len(todo), bs):
                sel = todo[a:a + bs]
                X = extractor(_fit_arrays(images[sel], extractor, resample))
                fs.append([doc_ids[k] for k in sel], X, None if labels is None else labels[sel])
                n_written += len(sel)
                bar.update(len(sel))
        finally:
            bar.close()
        n_total, dim = fs.n, fs.dim
    path = _finish(fs, final)
    return ExtractResult(path, n_total, n_written, n_existing, 0, dim, extractor.name,
                         time.time() - t0, [])


def extract_fashion_mnist(split: str, output, model="fashion-embed", *, directory=None,
                          limit: int | None = None, **kw) -> ExtractResult:
    """A feature store straight from the Fashion-MNIST IDX files, with labels.

    IDs are ``fmnist-<split>-NNNNN`` (row in the split); labels are the class numbers 0-9
    (``primo.features.datasets.FASHION_MNIST_CLASSES``). Other keywords as in :func:`extract_arrays`.
    """
    from .datasets import FASHION_MNIST_CLASSES, fashion_mnist_ids, load_fashion_mnist

    images, labels = load_fashion_mnist(split, directory, limit=limit)
    ids = fashion_mnist_ids(split, range(len(images)))
    meta = {"dataset": f"Fashion-MNIST {split}", "classes": list(FASHION_MNIST_CLASSES),
            "document_ids": "fmnist-<split>-<row>"}
    return extract_arrays(images, ids, output, model, labels=labels, metadata=meta,
                          desc=f"fashion-mnist {split}", **kw)
