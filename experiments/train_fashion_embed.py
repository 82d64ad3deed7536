#!/usr/bin/env python
"""Train the bundled Fashion-MNIST embedding (paper 003) and measure mAP@10 against raw pixels.

Trains :func:`primo.features.embed.train_embedder` (small CNN, batch-hard triplet loss, seeded) on
the Fashion-MNIST training split, then evaluates mAP@10 (paper 004) by exact Euclidean search with
the 10,000 test images as queries and the 60,000 training images as the database (relevance = same
class), for the embedding and for raw pixels (784-d, scaled to [0, 1]). Writes the weights to
``primo/data/fashion_embed.npz`` (with the settings, runtime and both mAP@10 values in its metadata).

    python experiments/train_fashion_embed.py [--epochs 12] [--seed 0] [--dir DIR] [-o PATH]
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from primo import __version__  # noqa: E402
from primo.features.datasets import load_fashion_mnist  # noqa: E402
from primo.features.embed import embed, save_embedder, train_embedder  # noqa: E402
from primo.evaluation.neighbors import map_at_k  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=None, help="directory with the Fashion-MNIST IDX files")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=None, help="steps per epoch (default: 60000 / batch)")
    ap.add_argument("--per-class", type=int, default=16)
    ap.add_argument("--mining", choices=["all", "hard"], default="all")
    ap.add_argument("--margin", type=float, default=0.3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1] / "primo" / "data"
                                                  / "fashion_embed.npz"))
    args = ap.parse_args(argv)

    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    xtr, ytr = load_fashion_mnist("train", args.dir)
    xte, yte = load_fashion_mnist("test", args.dir)
    t0 = time.time()
    model, history = train_embedder(xtr, ytr, epochs=args.epochs, steps_per_epoch=args.steps,
                                    per_class=args.per_class, margin=args.margin, mining=args.mining,
                                    learning_rate=args.lr, seed=args.seed,
                                    log=lambda s: print(s, flush=True))
    train_s = time.time() - t0
    print(f"training: {train_s:.0f} s", flush=True)

    t0 = time.time()
    etr, ete = embed(xtr, model=model), embed(xte, model=model)
    m_embed = map_at_k(ete, yte, etr, ytr, k=args.k)
    ptr = xtr.reshape(len(xtr), -1).astype(np.float32) / 255.0
    pte = xte.reshape(len(xte), -1).astype(np.float32) / 255.0
    m_pix = map_at_k(pte, yte, ptr, ytr, k=args.k)
    eval_s = time.time() - t0
    print(f"mAP@{args.k} (queries: 10,000 test images; database: 60,000 training images; "
          f"relevance: same class; Euclidean):")
    print(f"  fashion-embed (64-d): {m_embed:.4f}")
    print(f"  raw pixels (784-d):   {m_pix:.4f}")
    print(f"  ratio: {m_embed / m_pix:.3f}   (evaluation {eval_s:.0f} s)")

    meta = {
        "trained_on": "Fashion-MNIST train split (60,000 images)",
        "loss": f"batch-{args.mining} triplet", "margin": args.margin, "epochs": args.epochs,
        "steps_per_epoch": args.steps, "per_class": args.per_class, "classes_per_batch": 10,
        "optimizer": f"Adam {args.lr}, cosine decay", "seed": args.seed, "augment": "flips, shifts <= 2 px",
        "train_seconds": round(train_s, 1), "history": history,
        f"map_at_{args.k}": {"embedding": round(m_embed, 4), "pixels": round(m_pix, 4),
                             "queries": "test split", "database": "train split"},
        "primo_version": __version__, "tensorflow_version": tf.__version__,
    }
    save_embedder(model, args.output, meta)
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
