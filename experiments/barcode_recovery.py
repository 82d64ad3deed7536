#!/usr/bin/env python
"""Barcode recovery: how often a damaged barcode is decoded right, wrongly, or rejected.

Draws random documents of a pool (document indices 0 .. POOL_SIZE-1 of a barcode scheme, the
published one by default), damages their barcodes and decodes them with and without the pool:

* 0..4 random base substitutions (distinct positions, each to one of the 3 other bases);
* one insertion or one deletion, as it shows when the 30 nt 5' of IP are cut from a read
  (a deletion pulls in the last base of FP, an insertion pushes the first barcode base out);
* random 30-mers (how many are accepted at all).

Targets (issue 2): 1 substitution -> 100 % recovered, 0 wrong; 2 substitutions -> >= 90 %
recovered, <= 1 % wrong; random 30-mers -> <= 0.1 % accepted.

    python experiments/barcode_recovery.py                # 200,000 barcodes per row, 1.6 M pool
    python experiments/barcode_recovery.py --n 1000000 --max-distance none
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from primo.barcodes import BarcodeScheme
from primo.barcodes.decode import DEFAULT_MAX_DISTANCE, STATUS_NAMES, BarcodeDecoder
from primo.constants import FP

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_CODE = np.zeros(256, dtype=np.uint8)
_CODE[BASES] = np.arange(4)


def substitute(bc: np.ndarray, k: int, rng) -> np.ndarray:
    """k substitutions at distinct random positions of each row (uint8 N x 30 ASCII)."""
    out = bc.copy()
    if k == 0:
        return out
    n, L = out.shape
    pos = np.argsort(rng.random((n, L)), axis=1)[:, :k]
    rows = np.arange(n)[:, None]
    codes = _CODE[out[rows, pos]]
    out[rows, pos] = BASES[(codes + rng.integers(1, 4, (n, k))) % 4]
    return out


def indel(bc: np.ndarray, kind: str, rng) -> np.ndarray:
    """One deletion or insertion, the 30 nt window anchored at its 3' end (next to IP)."""
    n, L = bc.shape
    pos = rng.integers(0, L, n)
    ext = np.concatenate([np.full((n, 1), ord(FP[-1]), np.uint8), bc], axis=1)  # 31 nt
    j = np.arange(L + 1)[None, :]
    if kind == "deletion":
        # drop barcode base pos (index pos + 1 in ext), keep the last 30 of the 30 left
        keep = np.where(j < pos[:, None] + 1, j, j + 1)[:, :L]
        return np.take_along_axis(ext, np.minimum(keep, L), axis=1)
    # insertion of a random base before position pos; the window keeps the last 30 nt
    ins = BASES[rng.integers(0, 4, n)]
    full = np.empty((n, L + 1), np.uint8)
    src = np.where(j < pos[:, None], j, j - 1)
    full[:] = np.take_along_axis(bc, np.clip(src, 0, L - 1), axis=1)
    full[np.arange(n), pos] = ins
    return full[:, 1:]


def score(res, truth) -> tuple[float, float, float]:
    ok = res.accepted & (res.index == truth)
    wrong = res.accepted & (res.index != truth)
    return ok.mean(), wrong.mean(), 1 - res.accepted.mean()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200_000, help="barcodes per row")
    ap.add_argument("--pool-size", type=int, default=1_600_000)
    ap.add_argument("--seed", type=int, default=1, help="random seed of the experiment")
    ap.add_argument("--scheme-seed", type=int, default=42, help="barcode scheme permutation seed")
    ap.add_argument("--max-distance", default=str(DEFAULT_MAX_DISTANCE),
                    help="decoder distance cap (an integer, or 'none')")
    a = ap.parse_args(argv)
    cap = None if a.max_distance.lower() == "none" else int(a.max_distance)
    rng = np.random.default_rng(a.seed)
    scheme = BarcodeScheme(seed=a.scheme_seed)
    pool = np.arange(a.pool_size)
    t0 = time.perf_counter()
    plain = BarcodeDecoder(scheme, max_distance=cap)
    pooled = BarcodeDecoder(scheme, pool_indices=pool, max_distance=cap)
    print(f"# pool of {a.pool_size:,} documents, {a.n:,} barcodes per row, max_distance={cap}, "
          f"seed={a.seed} (decoders ready in {time.perf_counter() - t0:.1f} s; pool table "
          f"{pooled.pool.nbytes / 2**20:.1f} MiB)")
    truth = rng.integers(0, a.pool_size, a.n)
    clean = scheme.encode_bytes(truth).view(np.uint8).reshape(a.n, 30)
    rows = [(f"{k} substitution{'s' if k != 1 else ''}", substitute(clean, k, rng))
            for k in range(5)]
    rows += [("1 deletion", indel(clean, "deletion", rng)),
             ("1 insertion", indel(clean, "insertion", rng))]
    print(f"{'damage':<16}{'decoder':<8}{'recovered':>11}{'wrong':>10}{'rejected':>10}   "
          "statuses (% of rows)")
    summary = {}
    for name, bc in rows:
        for label, dec in (("plain", plain), ("pool", pooled)):
            r = dec.decode(bc)
            rec, wrong, rej = score(r, truth)
            summary[(name, label)] = (rec, wrong)
            st = ", ".join(f"{k} {100 * v / a.n:.2f}" for k, v in r.counts().items() if v)
            print(f"{name:<16}{label:<8}{100 * rec:>10.3f}%{100 * wrong:>9.3f}%{100 * rej:>9.3f}%"
                  f"   {st}")
    garbage = BASES[rng.integers(0, 4, (a.n, 30))]
    for label, dec in (("plain", plain), ("pool", pooled)):
        r = dec.decode(garbage)
        acc = r.accepted.mean()
        summary[("random", label)] = acc
        st = ", ".join(f"{k} {100 * v / a.n:.3f}" for k, v in r.counts().items() if v)
        print(f"{'random 30-mer':<16}{label:<8}{'accepted':>11}{100 * acc:>9.4f}%{'':>10}   {st}")

    checks = [
        ("1 substitution, pool: 100% recovered, 0 wrong",
         summary[("1 substitution", "pool")] == (1.0, 0.0)),
        ("2 substitutions, pool: >= 90% recovered, <= 1% wrong",
         summary[("2 substitutions", "pool")][0] >= 0.90
         and summary[("2 substitutions", "pool")][1] <= 0.01),
        ("random 30-mers, pool: <= 0.1% accepted", summary[("random", "pool")] <= 0.001),
    ]
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    assert set(STATUS_NAMES)  # status table documented in primo.barcodes.decode
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
