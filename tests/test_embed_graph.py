"""The fashion-embed extractor runs its network as one TensorFlow graph (primo.features.embed,
~20 % less CPU than Keras' op-by-op call): the features must be the eager call's, bit for bit."""

import numpy as np
import pytest

pytest.importorskip("keras")


@pytest.mark.parametrize("batch_size", [1024, 512, 37, 1])
def test_graph_gives_the_eager_values_bit_for_bit(batch_size):
    from primo.features.datasets import demo_arrays
    from primo.features.embed import embed, load_embedder

    _, images, _ = demo_arrays()
    images = images[:300]
    model, _ = load_embedder()
    x = (images.astype(np.float32) / 255.0)[..., None]
    # (the same batches: a batch's size may change the last bit of a value, in either mode)
    eager = np.concatenate([np.asarray(model(x[a:a + batch_size], training=False))
                            for a in range(0, len(x), batch_size)])
    got = embed(images, batch_size=batch_size, model=model)
    assert got.dtype == np.float32 and got.shape == (300, 64)
    assert np.array_equal(got, eager)


def test_extract_arrays_stores_the_eager_values(tmp_path):
    from primo.features.datasets import demo_arrays
    from primo.features.embed import load_embedder
    from primo.features.extract import extract_arrays
    from primo.features.store import FeatureStore

    ids, images, _ = demo_arrays()
    extract_arrays(images[:100], ids[:100], tmp_path / "f.h5", "fashion-embed", batch_size=40)
    model, _ = load_embedder()
    x = (images[:100].astype(np.float32) / 255.0)[..., None]
    eager = np.concatenate([np.asarray(model(x[a:a + 40], training=False)) for a in (0, 40, 80)])
    with FeatureStore.open(tmp_path / "f.h5") as st:
        assert np.array_equal(st.read(0, 100), eager)
