#!/usr/bin/env python
"""Pairs per second of the soft duplex scan against the paper's local-match predictor.

Both predictors run side by side on the same random one-hot pairs (80 nt, batches of
``--batch``): inference (``model([t, q])`` in a ``tf.function``) and one training step (forward,
gradient of the yield cross-entropy -- plus, for the scan, the energy regression -- with respect to
the predictor's weights *and* the one-hot inputs, as the encoder phase needs, and an optimizer
update). Prints both rates and the ratio local-match / scan.

    .venv/bin/python benchmarks/bench_predictors.py [--batch 100] [--repeats 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="TensorFlow intra/inter-op threads")
    ap.add_argument("--loops", type=int, nargs="*", default=[2, 3],
                    help="also time the parallel scan (DuplexScan(loops=n)) for these n")
    a = ap.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    import keras

    from primo.predictor.model import build_predictor, build_scan_predictor, predictor_outputs

    rng = np.random.default_rng(0)
    eye = np.eye(4, dtype="float32")
    t = tf.constant(eye[rng.integers(0, 4, (a.batch, 80))])
    q = tf.constant(eye[rng.integers(0, 4, (a.batch, 80))])
    y = tf.constant(rng.random(a.batch).astype("float32"))
    e = tf.constant(-rng.random(a.batch).astype("float32") * 50)

    def rates(model, name):
        opt = keras.optimizers.RMSprop(1e-3)
        opt.build(model.trainable_variables)

        @tf.function
        def infer(t, q):
            return predictor_outputs(model([t, q], training=False))[0]

        @tf.function
        def train(t, q, y, e):
            with tf.GradientTape() as tape:
                tape.watch([t, q])
                p, en = predictor_outputs(model([t, q], training=True))
                p = tf.clip_by_value(tf.reshape(p, [-1]), 1e-7, 1 - 1e-7)
                loss = -tf.reduce_mean(y * tf.math.log(p) + (1 - y) * tf.math.log(1 - p))
                if en is not None:
                    loss += tf.reduce_mean(tf.keras.losses.huber(e[:, None] / 10, en / 10))
            grads = tape.gradient(loss, model.trainable_variables + [t, q])
            opt.apply_gradients(zip(grads[:-2], model.trainable_variables))
            return loss, grads[-2]

        out = {}
        for kind, fn, args in (("inference", infer, (t, q)), ("train step", train, (t, q, y, e))):
            fn(*args)  # trace
            t0 = time.perf_counter()
            for _ in range(a.repeats):
                r = fn(*args)
            if kind == "train step":
                assert float(tf.reduce_sum(tf.abs(r[1]))) > 0, "no gradient reached the inputs"
            out[kind] = a.repeats * a.batch / (time.perf_counter() - t0)
        return out

    lm = rates(build_predictor(seed=0), "local-match")
    cols = [("scan (row recursion)", rates(build_scan_predictor(), "scan"))]
    for n in a.loops:
        cols.append((f"scan loops={n}", rates(build_scan_predictor(loops=n), f"scan{n}")))
    print(f"batch {a.batch}, {a.repeats} repeats, {a.threads} thread(s); pairs/s "
          "(ratio: local-match / scan)")
    print(f"{'':12s}{'local-match':>14s}" + "".join(f"{n:>24s}{'ratio':>8s}" for n, _ in cols))
    for kind in ("inference", "train step"):
        print(f"{kind:12s}{lm[kind]:14.0f}"
              + "".join(f"{c[kind]:24.0f}{lm[kind] / c[kind]:7.1f}x" for _, c in cols))


if __name__ == "__main__":
    main()
