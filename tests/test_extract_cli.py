"""`primo extract` end to end: pixels, VGG16 (random weights), a tiny SavedModel, Fashion-MNIST,
synthetic; skipped files, resume / overwrite, and every bad input of issue 5."""

import os

import h5py
import numpy as np
import pytest
from PIL import Image

from primo.features.datasets import FASHION_MNIST_DIR, demo_arrays, demo_images
from primo.features.extract import extract_images, partial_path
from primo.features.store import FeatureStore, read_features


@pytest.fixture
def images(tmp_path):
    """8 demo PNGs (28 x 28), a non-image with an image name, and a truncated JPEG."""
    d = tmp_path / "imgs"
    demo_images(d, n=8)
    (d / "labels.csv").unlink()
    (d / "notes.jpg").write_text("I am not an image\n")
    rng = np.random.default_rng(0)
    full = tmp_path / "full.jpg"
    Image.fromarray(rng.integers(0, 255, (60, 60, 3), dtype=np.uint8)).save(full, quality=90)
    data = full.read_bytes()
    (d / "cut.jpg").write_bytes(data[: len(data) // 2])
    full.unlink()
    return d


def _good_ids(d):
    return sorted(p.stem for p in d.glob("fmnist-*.png"))


def test_pixels_end_to_end_skips_bad_files(run_cli, images, tmp_path):
    out = tmp_path / "f.h5"
    res, stdout, err = run_cli(["extract", images, "-o", out, "--model", "pixels", "-b", "3"])
    assert res.exit_code == 0, err
    assert "notes.jpg" in err and "cut.jpg" in err and err.count("warning: skipped") == 2
    assert "truncated" in err and "not an image" in err
    assert "wrote 8 784-d vectors" in err and "2 inputs skipped" in err
    with FeatureStore.open(out) as fs:
        assert sorted(fs.ids.tolist()) == _good_ids(images)
        assert sorted(os.path.basename(p) for p, _ in fs.skipped) == ["cut.jpg", "notes.jpg"]
        meta = fs.metadata
        assert meta["extractor"] == "pixels:28" and meta["n_skipped"] == 2
        assert meta["preprocessing"].startswith("resize to 28x28") and "command" in fs.provenance[0]
        ids, _, labels = demo_arrays()
        X = fs.read_ids(ids[:8])
        assert np.allclose(X, demo_arrays()[1][:8].reshape(8, -1) / 255.0)
    assert not partial_path(out).exists()


def test_existing_output_needs_resume_or_overwrite(run_cli, images, tmp_path):
    out = tmp_path / "f.h5"
    assert run_cli(["extract", images, "-o", out, "--model", "pixels"])[0].exit_code == 0
    res, _, err = run_cli(["extract", images, "-o", out, "--model", "pixels"])
    assert res.exit_code == 2 and "already exists" in err and "resume" in err and "overwrite" in err
    assert err.count("\n") == 1
    res, stdout, err = run_cli(["extract", images, "-o", out, "--model", "pixels", "--resume"])
    assert res.exit_code == 0 and "wrote 0" in err and "8 already present" in err
    res, stdout, _ = run_cli(["extract", images, "-o", out, "--model", "pixels:16", "--overwrite"])
    assert res.exit_code == 0
    with FeatureStore.open(out) as fs:
        assert fs.dim == 256
        assert len(fs.skipped) == 2  # not duplicated by the runs


def test_resume_after_interruption_gives_the_same_store(run_cli, images, tmp_path):
    ref = tmp_path / "ref.h5"
    assert run_cli(["extract", images, "-o", ref, "--model", "pixels"])[0].exit_code == 0
    out = tmp_path / "f.h5"
    part = partial_path(out)
    # an interrupted run: the first 3 images committed to OUT.partial, then the process died
    few = sorted(images.glob("fmnist-*.png"))[:3]
    extract_images(few, tmp_path / "tmp.h5", "pixels")
    os.replace(tmp_path / "tmp.h5", part)
    res, _, err = run_cli(["extract", images, "-o", out, "--model", "pixels"])
    assert res.exit_code == 2 and "interrupted" in err and "resume continues it" in err
    res, _, err = run_cli(["extract", images, "-o", out, "--model", "pixels", "--resume"])
    assert res.exit_code == 0 and "wrote 5" in err and "3 already present" in err
    assert out.exists() and not part.exists()
    ids_r, X_r = read_features(ref)
    with FeatureStore.open(out) as fs:
        assert sorted(fs.ids.tolist()) == sorted(ids_r.tolist())
        assert np.array_equal(fs.read_ids(ids_r), X_r)


def test_resume_with_another_extractor_is_refused(run_cli, images, tmp_path):
    """Mixed dimensions on append."""
    out = tmp_path / "f.h5"
    assert run_cli(["extract", images, "-o", out, "--model", "pixels"])[0].exit_code == 0
    res, _, err = run_cli(["extract", images, "-o", out, "--model", "pixels:8", "--resume"])
    assert res.exit_code == 2 and str(out) in err and "was made with extractor='pixels:28'" in err
    assert "overwrite" in err


def test_output_that_is_not_a_feature_store(run_cli, images, tmp_path):
    out = tmp_path / "other.h5"
    with h5py.File(out, "w") as f:
        f["x"] = np.arange(3)
    res, _, err = run_cli(["extract", images, "-o", out, "--model", "pixels", "--resume"])
    assert res.exit_code == 1 and "not a primo feature store" in err and str(out) in err
    assert err.count("\n") == 1


def test_folder_with_no_images(run_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("x")
    res, _, err = run_cli(["extract", tmp_path / "empty", "-o", tmp_path / "f.h5", "--model", "pixels"])
    assert res.exit_code == 2 and "contains no images" in err and "empty" in err
    assert err.count("\n") == 1 and not (tmp_path / "f.h5").exists()


def test_only_broken_images_is_an_error_and_leaves_nothing(run_cli, tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    res, _, err = run_cli(["extract", tmp_path / "a.png", "-o", tmp_path / "f.h5", "--model", "pixels"])
    assert res.exit_code == 1 and "none of the 1 inputs could be read" in err
    assert not (tmp_path / "f.h5").exists() and not partial_path(tmp_path / "f.h5").exists()


def test_duplicate_stems(run_cli, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / "d" / sub).mkdir(parents=True)
        Image.new("L", (5, 5), 9).save(tmp_path / "d" / sub / "same.png")
    res, _, err = run_cli(["extract", tmp_path / "d", "-o", tmp_path / "f.h5", "--model", "pixels"])
    assert res.exit_code == 1 and "'same'" in err and "--ids path" in err
    res, _, err = run_cli(["extract", tmp_path / "d", "-o", tmp_path / "f.h5", "--model", "pixels",
                           "--ids", "path"])
    assert res.exit_code == 0
    assert sorted(read_features(tmp_path / "f.h5")[0].tolist()) == ["a/same.png", "b/same.png"]


def test_usage_errors(run_cli, images, tmp_path):
    out = tmp_path / "f.h5"
    res, _, err = run_cli(["extract", "-o", out])
    assert res.exit_code == 2 and "nothing to extract" in err
    res, _, err = run_cli(["extract", images, "-o", out, "--model", "resnet"])
    assert res.exit_code == 2 and "unknown model 'resnet'" in err and "hub:PATH" in err
    res, _, err = run_cli(["extract", images, "--synthetic", "5", "-o", out])
    assert res.exit_code == 2 and "only one" in err


def test_vgg16_missing_weights_names_the_file(run_cli, images, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    res, _, err = run_cli(["extract", images, "-o", tmp_path / "f.h5"])
    assert res.exit_code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in err
    assert str(tmp_path / "kh" / "models") in err and "--weights" in err
    assert not (tmp_path / "f.h5").exists()
    bad = tmp_path / "w.h5"
    bad.write_text("not weights")
    res, _, err = run_cli(["extract", images, "-o", tmp_path / "f.h5", "--weights", bad])
    assert res.exit_code == 1 and str(bad) in err and "not a Keras weights file" in err
    notop = tmp_path / "notop.h5"
    with h5py.File(notop, "w") as f:
        f.attrs["layer_names"] = [b"block1_conv1", b"block5_pool"]
    res, _, err = run_cli(["extract", images, "-o", tmp_path / "f.h5", "--weights", notop])
    assert res.exit_code == 1 and "no fc2 layer" in err and "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in err
    res, _, err = run_cli(["extract", images, "-o", tmp_path / "f.h5", "--weights", tmp_path / "none.h5"])
    assert res.exit_code == 2 and "does not exist" in err


def test_vgg16_random_weights_end_to_end(run_cli, tmp_path):
    d = tmp_path / "few"
    demo_images(d, n=3, size=40)
    out = tmp_path / "v.h5"
    res, stdout, err = run_cli(["extract", d, "-o", out, "--weights", "none", "-b", "2"])
    assert res.exit_code == 0, err
    with FeatureStore.open(out) as fs:
        X = fs.read()
        assert X.shape == (3, 4096) and X.dtype == np.float32 and (X >= 0).all() and X.any()
        meta = fs.metadata
        assert meta["extractor"] == "vgg16" and meta["weights"] == "random (testing only)"
        assert meta["input_size"] == [224, 224] and "preprocess_input" in meta["preprocessing"]


@pytest.fixture(scope="module")
def hub_modules(tmp_path_factory):
    """Tiny SavedModels: a feature-vector module, a text module and an image-to-image module."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("hub")

    class FeatureVector(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.random.stateless_normal([3, 8], seed=[1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def __call__(self, x):
            return tf.matmul(tf.reduce_mean(x, axis=[1, 2]), self.w)

    class Text(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, s):
            return tf.strings.length(s)

    class ImageToImage(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, x):
            return x * 2.0

    fv = FeatureVector()
    tf.saved_model.save(fv, str(root / "fv"))
    tf.saved_model.save(Text(), str(root / "text"))
    tf.saved_model.save(ImageToImage(), str(root / "img2img"))
    return root, fv.w.numpy()


def test_hub_feature_vector_module(run_cli, images, tmp_path, hub_modules):
    root, w = hub_modules
    out = tmp_path / "h.h5"
    res, stdout, err = run_cli(["extract", images, "-o", out, "--model", f"hub:{root / 'fv'}"])
    assert res.exit_code == 0, err
    with FeatureStore.open(out) as fs:
        meta = fs.metadata
        assert fs.dim == 8 and meta["input_size"] == [32, 32] and "[0, 1]" in meta["preprocessing"]
        ids = fs.ids.tolist()
        X = fs.read()
    # the module's mean-colour projection, computed by hand on the same decoded images
    from primo.features.images import load_image

    x = np.stack([load_image(images / f"{i}.png", 32) for i in ids]).astype(np.float32) / 255
    assert np.allclose(X, x.mean(axis=(1, 2)) @ w, atol=1e-5)


def test_hub_paths_that_are_not_feature_vector_modules(run_cli, images, tmp_path, hub_modules):
    root, _ = hub_modules
    out = tmp_path / "h.h5"
    for path, msg, code in [(root / "text", "no function takes a batch of RGB images", 1),
                            (root / "img2img", "returns shape (1, 224, 224, 3)", 1),
                            (images, "no saved_model.pb", 1),
                            (tmp_path / "missing", "does not exist", 2)]:
        res, _, err = run_cli(["extract", images, "-o", out, "--model", f"hub:{path}"])
        assert res.exit_code == code, err
        assert msg in err and str(path) in err and err.count("\n") == 1
        assert not out.exists()


def test_fashion_embed_from_pngs_matches_arrays(run_cli, images, tmp_path):
    out = tmp_path / "e.h5"
    res, _, err = run_cli(["extract", images, "-o", out, "--model", "fashion-embed"])
    assert res.exit_code == 0, err
    from primo.features.embed import embed

    ids, imgs, _ = demo_arrays()
    with FeatureStore.open(out) as fs:
        assert fs.dim == 64 and fs.metadata["extractor"] == "fashion-embed"
        assert np.allclose(fs.read_ids(ids[:8]), embed(imgs[:8]), atol=1e-5)


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_store_with_labels(run_cli, tmp_path):
    out = tmp_path / "fm.h5"
    res, stdout, err = run_cli(["extract", "--fashion-mnist", "test", "--limit", "300", "--model",
                                "pixels", "-o", out])
    assert res.exit_code == 0, err
    with FeatureStore.open(out) as fs:
        assert fs.n == 300 and fs.ids[42] == "fmnist-test-00042" and fs.labels[:3].tolist() == [9, 2, 1]
        assert fs.metadata["dataset"] == "Fashion-MNIST test"


def test_fashion_mnist_missing_directory(run_cli, tmp_path):
    res, _, err = run_cli(["extract", "--fashion-mnist", "train", "--dir", tmp_path, "-o", tmp_path / "f.h5",
                           "--model", "pixels"])
    assert res.exit_code == 2 and "apt-get install dataset-fashion-mnist" in err and str(tmp_path) in err


def test_synthetic_cli(run_cli, tmp_path):
    out = tmp_path / "s.h5"
    res, stdout, err = run_cli(["extract", "--synthetic", "1500", "--dim", "128", "--clusters", "10",
                                "--similar-share", "0.05", "-o", out, "-j", "1"])
    assert res.exit_code == 0, err
    with FeatureStore.open(out) as fs:
        assert (fs.n, fs.dim) == (1500, 128) and fs.labels.max() < 10
        assert fs.metadata["synthetic"]["similar_share"] == 0.05
