"""In-silico similarity search peers, each instrumented to report its candidate set.

The paper (Bee et al., "Benchmarking of in silico algorithms") compares DNA similarity search with
approximate nearest-neighbor (ANN) indexes by their *candidate set*: the documents an algorithm
retrieves from memory and compares to the query. Its size divided by the database size is the
*proportion retrieved*; the number of the query's true k nearest neighbors in it is the *k-NN
recall*. Every peer here runs the real library and reports, per query and per search parameter,
``(number retrieved, true neighbors found)``. How each one is counted:

``hnsw`` -- faiss ``IndexHNSWFlat`` (M=16, efConstruction=100), ``efSearch`` swept.
    Retrieved = ``faiss.cvar.hnsw_stats.ndis`` for a one-query search: the number of distance
    computations the search made, every one of which reads a full vector and compares it with
    the query. hnswlib (the same algorithm) does not expose this count, which is why the faiss
    implementation is used. The greedy descent through the upper layers has no visited table,
    so a node compared on two layers counts twice: the figure is an upper bound on the number of
    distinct documents, too high by at most the upper-layer work, which does not depend on
    efSearch (Fashion-MNIST, 60,000 x 784, M=16: 73 of the 765 comparisons at efSearch=100, on
    54 distinct nodes; so at most ~10 % high there, ~4 % at efSearch=400). It is capped at N. Found = true neighbors among the k returned; because
    faiss offers every compared vector to its top-k result heap, the k returned are the exact
    top k of the candidate set, so this equals the true neighbors *in* the candidate set.
``hnsw-sq`` -- the paper's "quantized HNSW": faiss ``IndexHNSWSQ`` (8-bit scalar quantizer).
    Retrieved = ``ndis`` as above (8-bit codes are read and compared). Found = true neighbors
    among the k returned: the comparison uses approximate distances, so a true neighbor that
    was scanned but mis-ranked is not counted (a scanned document only counts once identified).
``faiss-ivf`` -- faiss ``IndexIVFFlat`` (nlist ~ 4 sqrt(N) k-means lists), ``nprobe`` swept.
    Retrieved = the summed sizes of the ``nprobe`` inverted lists whose centroids are nearest to
    the query (read from the index's own coarse quantizer and inverted lists; equal to faiss's
    ``indexIVF_stats.ndis``). Found = true neighbors whose IDs are in those lists. The
    nprobe lists are nested, so both grow monotonically with nprobe.
``faiss-ivfpq`` -- faiss ``IndexIVFPQ`` (same coarse quantizer layout, PQ codes of 8 bits per
    sub-vector), ``nprobe`` swept. Retrieved = summed sizes of the probed lists (every PQ code in
    them is read and compared -- approximately, through lookup tables). Found = true
    neighbors among the k returned, since approximate distances can mis-rank scanned ones.
``annoy`` -- Spotify annoy (Euclidean, ``n_trees`` trees), ``search_k`` swept. annoy collects
    leaves from its trees until it holds ``search_k`` items (duplicates included), removes
    duplicates, computes the exact distance of each distinct item and returns the best n. Asking
    for ``n`` = N returns *all* of them, so retrieved = the length of that answer, and found =
    true neighbors in it. A leaf holds up to about D items, so annoy cannot go below roughly
    one leaf per tree.
``mrpt`` -- MRPT (multiple random projection trees, the maintained successor of the RPForest
    family the paper used; lyst/rpforest does not build on Python 3.11), depth and number of
    trees and ``votes_required`` swept. Candidates are the points that fall in the query's leaf in
    at least ``votes_required`` trees; MRPT computes their exact distances. Asking for k = N
    returns all of them (the rest is padded with -1), so retrieved = the non-negative answers.
    MRPT's Python binding takes no seed (its trees come from ``std::random_device``), so its
    points vary slightly from run to run; every other peer is seeded and repeatable.
``lsh`` -- random-projection locality-sensitive hashing (paper 004), implemented here
    (:class:`RandomProjectionLSH`): ``n_bits`` sign bits of random hyperplanes through the
    database mean per table, ``n_tables`` tables, optionally multi-probe of every bucket within
    Hamming ``radius`` of the query's. Retrieved = the distinct documents in the union of the
    probed buckets; found = true neighbors among them.

Peers that need a library which does not import are skipped with a one-line warning
(:func:`resolve_peers`). Add a peer by subclassing :class:`Peer` and calling :func:`register_peer`.

Examples
--------
>>> import numpy as np
>>> X = np.array([[1, 1], [2, 1], [-1, 1], [-1, -2], [1, -1]], dtype=np.float32)
>>> lsh = RandomProjectionLSH(n_bits=2, n_tables=1, projections=np.eye(2), center=False).fit(X)
>>> lsh.candidates(np.array([3.0, 2.0])).tolist()      # same quadrant (+, +)
[0, 1]
>>> lsh.candidates(np.array([3.0, 2.0]), radius=1).tolist()   # plus quadrants one bit away
[0, 1, 2, 4]
"""

from __future__ import annotations

# one module per peer family (faiss, trees, LSH) beside their interface; every name is
# importable from here, where the registry is
import importlib

from ..errors import UsageError
from .peers_base import Peer, SweepPoint, count_found
from .peers_faiss import HNSWPeer, HNSWSQPeer, IVFFlatPeer, IVFPQPeer
from .peers_lsh import LSHPeer, RandomProjectionLSH
from .peers_trees import AnnoyPeer, MRPTPeer

__all__ = [
    "SweepPoint", "Peer", "HNSWPeer", "HNSWSQPeer", "IVFFlatPeer", "IVFPQPeer", "AnnoyPeer",
    "MRPTPeer", "LSHPeer", "RandomProjectionLSH", "PEERS", "DEFAULT_PEERS", "register_peer",
    "peer_unavailable_reason", "resolve_peers", "count_found",
]


# ---------------------------------------------------------------------------------------- registry
PEERS: dict[str, type] = {}


def register_peer(cls: type) -> type:
    """Add a :class:`Peer` subclass to :data:`PEERS` under ``cls.name`` (usable as a decorator)."""
    PEERS[cls.name] = cls
    return cls


for _cls in (HNSWPeer, HNSWSQPeer, IVFFlatPeer, IVFPQPeer, AnnoyPeer, MRPTPeer, LSHPeer):
    register_peer(_cls)

#: the peers run when none are named
DEFAULT_PEERS = ("hnsw", "hnsw-sq", "faiss-ivf", "faiss-ivfpq", "annoy", "lsh", "mrpt")


def peer_unavailable_reason(name: str) -> str | None:
    """None if peer ``name`` can run here, else a one-line reason (a library that does not import).

    Raises
    ------
    UsageError
        ``name`` is not a known peer.
    """
    if name not in PEERS:
        raise UsageError(f"unknown peer {name!r}", hint=f"choose from {', '.join(sorted(PEERS))}")
    for mod in PEERS[name].requires:
        try:
            importlib.import_module(mod)
        except Exception as e:  # ImportError, or a broken binary wheel raising something else
            return (f"peer {name} skipped: its library {mod!r} does not import "
                    f"({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
                    f"install it (pip install 'primo[ann]') to benchmark {name}")
    return None


def resolve_peers(names, options: dict | None = None, seed: int = 0, threads: int | None = None):
    """Instantiate the named peers; those whose library is missing are skipped.

    Parameters
    ----------
    names : iterable of str, or a comma-separated str
        Peer names (see :data:`PEERS`); duplicates are ignored.
    options : dict, optional
        ``{peer name: {option: value}}`` passed to the peer's constructor.

    Returns
    -------
    peers : list of Peer
    skipped : list of str
        One-line messages, one per skipped peer.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(dict.fromkeys(names))
    if not names:
        raise UsageError("no peers to run", hint=f"choose from {', '.join(sorted(PEERS))}")
    options = options or {}
    for n in options:
        if n not in PEERS:
            raise UsageError(f"option given for unknown peer {n!r}",
                             hint=f"choose from {', '.join(sorted(PEERS))}")
    peers, skipped = [], []
    for n in names:
        reason = peer_unavailable_reason(n)
        if reason:
            skipped.append(reason)
            continue
        opts = options.get(n, {})
        for k, v in opts.items():
            _check_option_value(n, k, v)
        try:
            peers.append(PEERS[n](seed=seed, threads=threads, **opts))
        except (TypeError, ValueError, OverflowError) as e:   # unknown option, wrong kind
            raise UsageError(f"bad option for peer {n} ({e})",
                             hint=f"options of {n}: {_option_names(PEERS[n])}") from None
    return peers, skipped


_OPTION_MAX = 2**31 - 1   # the peers' libraries take C ints


def _check_option_value(peer: str, name: str, value) -> None:
    """A numeric peer option must be finite and fit a C int (the libraries would overflow or
    hang far below Python's limits)."""
    import math

    for v in (value if isinstance(value, (list, tuple)) else [value]):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if not math.isfinite(v) or abs(v) > _OPTION_MAX:
            raise UsageError(f"peer option {peer}.{name} = {v} is out of range",
                             hint=f"give a finite value of at most {_OPTION_MAX:,}",
                             option="peer_options")


def _option_names(cls) -> str:
    import inspect

    names = []
    for c in cls.__mro__:
        if c is object or "__init__" not in c.__dict__:
            continue
        names += [p for p in inspect.signature(c.__init__).parameters if p not in ("self", "kw")]
    return ", ".join(dict.fromkeys(n for n in names if n not in ("seed", "threads"))) or "none"
