"""Encode a feature store as an oligo pool: ``primo encode-db --model MODEL/ --features F.h5 -o POOL/``.

The feature store is streamed in chunks (``chunksize`` rows at a time, default 50,000): each chunk is
encoded by the model's encoder (argmax per position -> 80-nt feature regions) and handed to a
:class:`~primo.oligos.pool.PoolWriter`, which assigns barcodes (document index = row order in the
store), writes ``database_seqs.csv.gz``, the Twist sheet, ``barcode_order.csv.gz``, QC and the
manifest into a temporary directory and renames it into place when everything is done. Memory is
bounded by the chunk size (plus the pool's duplicate-detection hashes: 16 bytes per document).

The three stages overlap: the next chunks are read from the store in a background thread (HDF5
reads release the GIL, so the disk works while the encoder computes) and the pool writer adds the
previous chunk in another one (its gzip and numpy work release the GIL too), while the encoder runs
on the current chunk in the calling thread. Chunks are read, encoded and written in the same order
and with the same boundaries as one after the other, so the pool is byte for byte the same; an
error in any stage stops the others and is raised in the calling thread, once both helper threads
have ended (the writer is never aborted while it is still writing).

The pool manifest records the model (path, card checksum, threshold, extractor) beside the layout and
barcode parameters, so a pool can always be traced to the encoder that made it.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from ..errors import DataError, UsageError

__all__ = ["encode_database", "encode_store_chunks"]

_END = object()


def _prefetched(items, depth: int = 1):
    """Iterate ``items`` in a background thread, up to ``depth`` items ahead of the consumer.

    Items come in order; an exception raised by ``items`` is raised here at its place in the
    sequence. Closing the generator (or an error in the consumer) stops the thread and waits for
    it, so ``items``' resources (an open feature store) can be released right after.
    """
    q = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def put(x):
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for x in items:
                if not put((True, x)):
                    return
            put((True, _END))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put((False, e))

    th = threading.Thread(target=work, name="primo-read-ahead", daemon=True)
    th.start()
    try:
        while True:
            ok, x = q.get()
            if not ok:
                raise x
            if x is _END:
                return
            yield x
    finally:
        stop.set()
        th.join()


def _write_behind(add, items, depth: int = 1):
    """Call ``add(*item)`` for each item of ``items`` in a background thread, in order, while the
    next items are being made; an error on either side stops both and is raised here, after the
    thread has ended."""
    q = queue.Queue(maxsize=max(1, int(depth)))
    failed = []

    def work():
        while True:
            x = q.get()
            if x is _END:
                return
            try:
                add(*x)
            except BaseException as e:  # noqa: BLE001 - raised in the calling thread
                failed.append(e)
                return

    th = threading.Thread(target=work, name="primo-write-behind", daemon=True)
    th.start()
    try:
        for x in items:
            while True:  # hand the item over, unless the writer has failed
                if failed:
                    break
                try:
                    q.put(x, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if failed:
                break
    finally:
        # the writer finishes what it holds (or stops at its error) before anything else happens
        while th.is_alive():
            try:
                q.put(_END, timeout=0.1)
                break
            except queue.Full:
                continue
        th.join()
    if failed:
        raise failed[0]


def encode_store_chunks(model, store, chunksize: int = 50_000, batch_size: int = 4096,
                        progress: bool = True):
    """Yield ``(ids, feature_sequences)`` for consecutive chunks of an open feature store.

    The next chunks are read in a background thread while a chunk is encoded (the store must stay
    open until the generator is exhausted or closed).
    """
    from ..progress import progress as _progress

    with _progress(total=store.n, desc="encoding", unit="doc", disable=not progress) as bar:
        # rows per step: at most `chunksize`, and at most the store's ~64 MB read size, so memory
        # stays bounded for wide features (50,000 x 4096 float32 would be 820 MB)
        chunks = _prefetched(store.iter_chunks(chunksize=min(chunksize, store.default_chunksize())))
        try:
            for ids, X in chunks:
                seqs = model.encode_features(X, batch_size=batch_size)
                bar.update(len(ids))
                yield ids, seqs
        finally:
            chunks.close()


def encode_database(model, features, out_dir, *, chunksize: int = 50_000, batch_size: int = 4096,
                    qc: str = "fail", qc_config=None, scheme=None, name_prefix: str = "primo",
                    progress: bool = True):
    """Encode every document of a feature store and write the pool directory ``out_dir``.

    Parameters
    ----------
    model : PrimoModel or path
        a trained model directory (:func:`primo.model_dir.load_model`).
    features : path
        the feature store (``primo extract``); its dimension and extractor must match the model.
    out_dir : path
        the pool directory to write (atomically).
    chunksize : int
        rows encoded and written per step (bounded memory).
    qc : {"fail", "warn", "off"}
        whether manufacturability failures stop the run (nothing is written) or only warn.
    qc_config : QCConfig, optional
        QC thresholds (default: :class:`primo.oligos.qc.QCConfig`).
    scheme : BarcodeScheme, optional
        barcode parameters (default: the published scheme, seed 42).

    Returns
    -------
    BuildResult
        path, number of documents, QC report and manifest.
    """
    from ..barcodes import BarcodeScheme
    from ..features.store import FeatureStore, skipped_rows
    from ..model_dir import load_model, PrimoModel
    from ..oligos.layout import OligoLayout
    from ..oligos.pool import PoolWriter

    if chunksize < 1:
        raise UsageError(f"chunksize must be at least 1, got {chunksize}", option="chunksize")
    if not isinstance(model, PrimoModel):
        model = load_model(model)
    layout = OligoLayout.from_dict(model.card.get("layout"))
    scheme = scheme or BarcodeScheme()
    features = Path(features)
    with FeatureStore.open(features) as store:
        if store.n == 0:
            raise DataError("the feature store holds no documents", path=features,
                            hint="extract features first with `primo extract`")
        model.check_features(store.dim, store.metadata, path=features)
        if store.n > scheme.n_ids:
            raise DataError(f"{store.n:,} documents but the barcode scheme has only "
                            f"{scheme.n_ids:,} IDs", path=features)
        extra = {
            "model": {"path": str(model.path), "card_checksum": model.card.get("checksum"),
                      "threshold": model.threshold, "extractor": model.extractor},
            "features": {"path": str(features), "n": int(store.n), "dim": int(store.dim)},
            # rows holding NaN / inf left out with --skip-bad-rows (primo.features.store)
            "skipped_rows": skipped_rows(),
        }
        with PoolWriter(out_dir, layout=layout, scheme=scheme, qc=qc, qc_config=qc_config,
                        name_prefix=name_prefix, source=features, extra_manifest=extra,
                        command="encode-db") as writer:
            chunks = encode_store_chunks(model, store, chunksize, batch_size, progress)
            try:
                _write_behind(writer.add, chunks)
            finally:
                chunks.close()
    return writer.result
