"""Document IDs <-> 30-nt Reed-Solomon barcodes (compatible with the published primo pool).

* :mod:`primo.barcodes.scheme`: :class:`BarcodeScheme` (index <-> ID <-> codeword <-> barcode,
  vectorised encoding, manifest dict);
* :mod:`primo.barcodes.decode`: :class:`BarcodeDecoder`, bulk decoding with error and erasure
  correction and pool-restricted resolution, its status table, and the per-codeword
  :func:`decode_reference` built on reedsolo;
* :mod:`primo.barcodes.parse`: :class:`BarcodeParser`, exact barcodes (no correction) ->
  document indices, for the barcodes of a pool file;
* :mod:`primo.barcodes.stream`: line-oriented encode/decode for pipes (``primo barcodes``).
"""

from .decode import STATUS_NAMES, BarcodeDecoder, DecodeResult, decode_reference
from .scheme import BARCODE_LENGTH, BarcodeScheme, default_codebook

__all__ = ["BarcodeScheme", "default_codebook", "BARCODE_LENGTH", "BarcodeDecoder", "DecodeResult",
           "decode_reference", "STATUS_NAMES"]
