"""Encode a feature store as an oligo pool: ``primo encode-db --model MODEL/ --features F.h5 -o POOL/``.

The feature store is streamed in chunks (``chunksize`` rows at a time, default 50,000): each chunk is
encoded by the model's encoder (argmax per position -> 80-nt feature regions) and handed to a
:class:`~primo.oligos.pool.PoolWriter`, which assigns barcodes (document index = row order in the
store), writes ``database_seqs.csv.gz``, the Twist sheet, ``barcode_order.csv.gz``, QC and the
manifest into a temporary directory and renames it into place when everything is done. Memory is
bounded by the chunk size (plus the pool's duplicate-detection hashes: 16 bytes per document).

The pool manifest records the model (path, card checksum, threshold, extractor) beside the layout and
barcode parameters, so a pool can always be traced to the encoder that made it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError, UsageError

__all__ = ["encode_database", "encode_store_chunks"]


def encode_store_chunks(model, store, chunksize: int = 50_000, batch_size: int = 4096,
                        progress: bool = True):
    """Yield ``(ids, feature_sequences)`` for consecutive chunks of an open feature store."""
    from ..progress import progress as _progress

    with _progress(total=store.n, desc="encoding", unit="doc", disable=not progress) as bar:
        # rows per step: at most `chunksize`, and at most the store's ~64 MB read size, so memory
        # stays bounded for wide features (50,000 x 4096 float32 would be 820 MB)
        for ids, X in store.iter_chunks(chunksize=min(chunksize, store.default_chunksize())):
            seqs = model.encode_features(X, batch_size=batch_size)
            bar.update(len(ids))
            yield ids, seqs


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
            for ids, seqs in encode_store_chunks(model, store, chunksize, batch_size, progress):
                writer.add(ids, seqs)
    return writer.result
