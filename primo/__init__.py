"""primo: content-based similarity search in DNA data storage.

The package follows the pipeline of Bee et al. (papers 001/002): image features are encoded as 80-nt
DNA feature regions by a learned encoder, stored as an oligo pool with Reed-Solomon barcodes, queried
with biotinylated probes, and read back from sequencing reads.

Heavy dependencies (TensorFlow/Keras, faiss, ...) are imported lazily by the modules that need them,
so ``import primo`` and the molecular / analysis commands stay light.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
