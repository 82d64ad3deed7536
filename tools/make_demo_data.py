#!/usr/bin/env python
"""Regenerate primo/data/fashion_demo.npz: 2,000 Fashion-MNIST test images (200 per class).

The images are drawn with a fixed seed from the *test* split (the bundled embedder is trained on the
training split only), and ordered round-robin by class so that any prefix is class-balanced.

    python tools/make_demo_data.py [--dir /usr/share/datasets/fashion-mnist] [--per-class 200]
"""

import argparse
from pathlib import Path

import numpy as np


from primo.features.datasets import load_fashion_mnist  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="directory with the Fashion-MNIST IDX files")
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20240605)
    ap.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1] / "primo" / "data"
                                                  / "fashion_demo.npz"))
    args = ap.parse_args(argv)
    images, labels = load_fashion_mnist("test", args.dir)
    rng = np.random.default_rng(args.seed)
    per = [np.sort(rng.choice(np.flatnonzero(labels == c), args.per_class, replace=False))
           for c in range(10)]
    index = np.stack(per, axis=1).reshape(-1)  # round-robin: c0, c1, ..., c9, c0, ...
    np.savez_compressed(args.output, images=images[index], labels=labels[index],
                        index=index.astype(np.int32))
    print(f"wrote {len(index)} images to {args.output} ({Path(args.output).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
