"""Document IDs <-> 30-nt Reed-Solomon barcodes (compatible with the published primo pool).

See :mod:`primo.barcodes.scheme` for the layout. Bulk decoding with error and erasure correction is
in :mod:`primo.barcodes.decode`.
"""

from .scheme import BARCODE_LENGTH, BarcodeScheme, default_codebook

__all__ = ["BarcodeScheme", "default_codebook", "BARCODE_LENGTH"]
