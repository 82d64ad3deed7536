"""primo against approximate-nearest-neighbor peers (``primo benchmark``).

* :mod:`primo.benchmark.peers` -- the ANN peers (HNSW, faiss IVF, annoy, MRPT, LSH) behind one
  interface, each swept over its parameters;
* :mod:`primo.benchmark.core` -- the candidate-set benchmark: primo's curve and the peers' on the
  same queries, ``benchmarks.csv`` and its plot.
"""
