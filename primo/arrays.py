"""Small array helpers shared across primo."""

from __future__ import annotations

import numpy as np

__all__ = ["unique"]


def unique(a) -> np.ndarray:
    """Sorted distinct values of a 1-d array, by sorting.

    ``np.unique`` without ``return_*`` arguments takes a hash-based path in numpy 2.3+ that is
    ~100x slower than a sort for a million integers (1.0 s vs 0.01 s for a 1.6 M-document pool);
    this gives the same result the fast way.

    >>> unique([3, 1, 3, 2]).tolist()
    [1, 2, 3]
    """
    a = np.sort(np.asarray(a).ravel(), kind="stable")
    if a.size < 2:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    if a.dtype.kind == "f":   # NaNs compare unequal: keep one, as np.unique does
        nan = np.isnan(a)
        if nan.any():
            keep[nan] = False
            keep[np.flatnonzero(nan)[0]] = True
    return a[keep]
