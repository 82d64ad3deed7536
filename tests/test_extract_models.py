"""Issue 19: Keras applications (resnet50, mobilenet_v3_large, efficientnet_b0, vgg16) and TF-Hub
handles as feature extractors; --list-models; extractor identity (weights sha256, preprocessing)
recorded and checked wherever two feature spaces meet.

The networks run with random weights (ImageNet weights cannot be downloaded here) at 32 x 32 where
the application allows it; TF-Hub modules are tiny Keras models exported with ``model.export``."""

import hashlib
import shutil
import tarfile

import h5py
import numpy as np
import pytest

from primo.errors import DataError, UsageError
from primo.features.datasets import demo_images
from primo.features.extract import extract_images
from primo.features.extractors import (KERAS_APPLICATIONS, extractor_mismatch, get_extractor,
                                       list_models)
from primo.features.images import load_image
from primo.features.store import FeatureStore, write_features

CAFFE_MEANS_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    """3 bundled demo images (28 x 28 PNG) and their decoded 32 x 32 RGB arrays, by ID."""
    d = tmp_path_factory.mktemp("few")
    demo_images(d, n=3)
    (d / "labels.csv").unlink()
    return d


def _decoded(d, ids, size):
    return np.stack([load_image(d / f"{i}.png", size) for i in ids]).astype(np.float32)


@pytest.fixture(autouse=True)
def _empty_caches(tmp_path, monkeypatch):
    """No weights or TF-Hub modules from this machine's caches: every test brings its own."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "tfhub"))
    monkeypatch.delenv("PRIMO_HUB_DOWNLOAD", raising=False)
    monkeypatch.delenv("TFHUB_MODEL_LOAD_FORMAT", raising=False)


# --------------------------------------------------------------------------- Keras applications
@pytest.mark.parametrize("name, size, dim", [("resnet50", 32, 2048), ("mobilenet_v3_large", 32, 960),
                                             ("efficientnet_b0", 32, 1280), ("vgg16", 224, 4096)])
def test_keras_application_random_weights(name, size, dim, few, tmp_path):
    """Shape, preprocessing (recomputed here by hand) and metadata of each application."""
    import keras

    ext = get_extractor(name, "none", input_size=None if name == "vgg16" else size)
    out = tmp_path / "f.h5"
    res = extract_images([few], out, ext, batch_size=2)
    assert res.n_written == 3 and res.dim == dim
    with FeatureStore.open(out) as fs:
        ids, X, meta = fs.ids.tolist(), fs.read(), fs.metadata
    assert X.shape == (3, dim) and X.dtype == np.float32 and np.isfinite(X).all() and X.any()
    assert meta["extractor"] == name and meta["dim"] == dim and meta["input_size"] == [size, size]
    assert meta["weights"] == "random (testing only)" and meta["weights_sha256"] is None
    assert meta["preprocessing"].startswith(f"resize to {size}x{size} RGB")
    assert meta["extractor_options"] == ({} if name == "vgg16" else {"input_size": size})
    x = _decoded(few, ids, size)
    if name in ("resnet50", "vgg16"):
        # caffe mode: RGB -> BGR, ImageNet means subtracted, no scaling
        assert "RGB->BGR" in meta["preprocessing"] and f"{name}.preprocess_input" in meta["preprocessing"]
        ref = ext._model.predict_on_batch(x[..., ::-1] - CAFFE_MEANS_BGR)
    else:
        # 0-255 straight into the network, which rescales itself
        rescale = [la for la in ext._model.layers if isinstance(la, keras.layers.Rescaling)][0]
        if name == "mobilenet_v3_large":
            assert "[-1, 1]" in meta["preprocessing"]
            assert (rescale.scale, rescale.offset) == pytest.approx((1 / 127.5, -1.0))
        else:
            assert "ImageNet mean and std" in meta["preprocessing"]
            assert (rescale.scale, rescale.offset) == pytest.approx((1 / 255, 0.0))
        ref = ext._model.predict_on_batch(x)
    assert np.allclose(X, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))
    if name != "vgg16":  # pooled: the model ends in global average pooling
        assert isinstance(ext._model.layers[-1], keras.layers.GlobalAveragePooling2D)


def test_keras_application_from_the_cli(run_cli, few, tmp_path):
    out = tmp_path / "m.h5"
    res, stdout, err = run_cli(["extract", few, "-o", out, "--model", "mobilenet_v3_large",
                                "--weights", "none", "--input-size", "32"])
    assert res.exit_code == 0, err
    assert "wrote 3 960-d vectors (mobilenet_v3_large)" in err
    with FeatureStore.open(out) as fs:
        assert fs.dim == 960 and fs.metadata["input_size"] == [32, 32]
        assert "command" in fs.provenance[0]


@pytest.mark.parametrize("name", list(KERAS_APPLICATIONS))
def test_missing_weights_names_file_folder_and_url(name, run_cli, few, tmp_path):
    app = KERAS_APPLICATIONS[name]
    out = tmp_path / "f.h5"
    res, _, err = run_cli(["extract", few, "-o", out, "--model", name])
    assert res.exit_code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{app.title} ImageNet weights not found" in err and app.weights_file in err
    assert str(tmp_path / "keras_home" / "models") in err and app.url in err
    assert "--weights PATH" in err and "--weights none" in err
    assert not out.exists()
    res, stdout, _ = run_cli(["extract", "--list-models"])
    line = next(s for s in stdout.splitlines() if s.startswith(name + " "))
    assert "MISSING" in line and str(tmp_path / "keras_home" / "models" / app.weights_file) in line


def test_bad_weights_files_and_sizes(run_cli, few, tmp_path):
    out = tmp_path / "f.h5"
    top = tmp_path / "with_top.h5"
    with h5py.File(top, "w") as f:
        f.attrs["layer_names"] = [b"conv1_conv", b"avg_pool", b"predictions"]
    res, _, err = run_cli(["extract", few, "-o", out, "--model", "resnet50", "--weights", top])
    assert res.exit_code == 1 and str(top) in err and "classifier top" in err
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in err
    res, _, err = run_cli(["extract", few, "-o", out, "--model", "vgg16", "--weights", "none",
                           "--input-size", "64"])
    assert res.exit_code == 2 and "vgg16 takes 224x224 images" in err
    res, _, err = run_cli(["extract", few, "-o", out, "--model", "efficientnet_b0", "--weights", "none",
                           "--input-size", "16"])
    assert res.exit_code == 2 and "at least 32x32" in err
    with pytest.raises(UsageError, match="do not apply to hub"):
        get_extractor("hub:/x", weights="none")
    assert not out.exists()


def test_weights_from_the_keras_cache(run_cli, few, tmp_path, capsys):
    """An EfficientNet-B0 weights file in the Keras cache: loaded, hashed, flagged as not the
    file Keras downloads, and given the ImageNet normalisation Keras adds for its own weights."""
    import keras

    keras.utils.set_random_seed(1)
    src = keras.applications.EfficientNetB0(weights=None, include_top=False, pooling="avg",
                                            input_shape=(32, 32, 3))
    norm = [la for la in src.layers if isinstance(la, keras.layers.Normalization)][0]
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    norm.adapt_mean.assign(mean.reshape(norm.adapt_mean.shape))
    norm.adapt_variance.assign((std ** 2).reshape(norm.adapt_variance.shape))
    norm.finalize_state()
    path = tmp_path / "keras_home" / "models" / "efficientnetb0_notop.h5"
    path.parent.mkdir(parents=True)
    src.save(str(path))  # the legacy HDF5 layout keras.applications downloads
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    res, stdout, _ = run_cli(["extract", "--list-models"])
    line = next(s for s in stdout.splitlines() if s.startswith("efficientnet_b0 "))
    assert f"present: {path}" in line

    capsys.readouterr()
    ext = get_extractor("efficientnet_b0", input_size=32)  # weights="imagenet": the cache
    assert "is not the file keras.applications downloads" in capsys.readouterr().err
    meta = ext.metadata()
    assert meta["weights_sha256"] == sha and meta["weights"] == str(path)
    x = _decoded(few, sorted(p.stem for p in few.glob("*.png")), 32)
    got = ext(x.astype(np.uint8))
    # Keras' imagenet EfficientNet divides once more by sqrt(std) after its Normalization; the
    # same network without that, fed c * x + 255 * mean * (1 - c) with c = 1 / sqrt(std), agrees
    c = 1.0 / np.sqrt(std)
    ref = src.predict_on_batch(c * x + 255.0 * mean * (1.0 - c))
    assert np.allclose(got, ref, rtol=1e-3, atol=1e-4 * float(np.abs(ref).max()))
    assert not np.allclose(got, src.predict_on_batch(x), rtol=1e-3)

    # the same file given to another network
    res, _, err = run_cli(["extract", few, "-o", tmp_path / "m.h5", "--model", "mobilenet_v3_large",
                           "--weights", path, "--input-size", "32"])
    assert res.exit_code == 1 and "cannot load MobileNetV3-Large weights" in err and str(path) in err
    assert err.count("\n") == 1


# --------------------------------------------------------------------------- TF-Hub
@pytest.fixture(scope="module")
def hub_module(tmp_path_factory):
    """A tiny Keras model exported as a SavedModel (``model.export``), and the Keras model."""
    import keras

    root = tmp_path_factory.mktemp("hubmod")
    keras.utils.set_random_seed(2)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    out = keras.layers.Dense(6)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, out)
    model.export(str(root / "module"), verbose=False)
    return root / "module", model


def _hub_run(run_cli, few, out, spec):
    res, stdout, err = run_cli(["extract", few, "-o", out, "--model", f"hub:{spec}"])
    assert res.exit_code == 0, err
    with FeatureStore.open(out) as fs:
        return fs.ids.tolist(), fs.read(), fs.metadata


def test_hub_local_folder_cache_layout_and_archive(run_cli, few, tmp_path, hub_module):
    module, model = hub_module
    ids, X, meta = _hub_run(run_cli, few, tmp_path / "a.h5", module)
    ref = model.predict_on_batch(_decoded(few, ids, 16) / 255.0)
    assert X.shape == (3, 6) and np.allclose(X, ref, atol=1e-5)
    assert meta["extractor"] == f"hub:{module}" and meta["input_size"] == [16, 16]
    assert "[0, 1]" in meta["preprocessing"] and len(meta["weights_sha256"]) == 64
    assert meta["extractor_options"] == {"input_range": "0-1"}  # the module fixes the size

    # a handle, found in the TF-Hub cache: TFHUB_CACHE_DIR / sha1(handle)
    handle = "https://tfhub.dev/primo-tests/tiny/feature_vector/1"
    cached = tmp_path / "tfhub" / hashlib.sha1(handle.encode()).hexdigest()
    shutil.copytree(module, cached)
    ids2, X2, meta2 = _hub_run(run_cli, few, tmp_path / "b.h5", handle)
    assert ids2 == ids and np.array_equal(X2, X)
    assert meta2["extractor"] == f"hub:{handle}" and str(cached) in meta2["weights"]
    assert meta2["weights_sha256"] == meta["weights_sha256"]  # the same files

    # a compressed module: tensorflow_hub unpacks it into the cache (sha1 of its path)
    archive = tmp_path / "module.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(module, arcname=".")
    ids3, X3, meta3 = _hub_run(run_cli, few, tmp_path / "c.h5", archive)
    assert np.array_equal(X3, X) and meta3["weights_sha256"] == meta["weights_sha256"]
    unpacked = tmp_path / "tfhub" / hashlib.sha1(str(archive.resolve()).encode()).hexdigest()
    assert (unpacked / "saved_model.pb").is_file()
    res, stdout, _ = run_cli(["extract", "--list-models"])
    assert f"hub:{archive.resolve()}" in stdout and "TF-Hub cache (1 handles)" in stdout

    # stores of the handle and of the folder are different extractors for the benchmark
    res, _, err = run_cli(["benchmark", "-f", tmp_path / "a.h5", "-Q", tmp_path / "b.h5",
                           "-o", tmp_path / "bench", "--neighbors", "1", "--peers", "none"])
    assert res.exit_code == 1 and "different extractors" in err and err.count("\n") == 1


def test_hub_handle_not_cached_fails_at_once_in_one_line(run_cli, few, tmp_path, monkeypatch):
    handle = "https://www.kaggle.com/models/google/mobilenet-v3/TensorFlow2/large-100-224-feature-vector/1"
    folder = tmp_path / "tfhub" / hashlib.sha1(handle.encode()).hexdigest()
    out = tmp_path / "f.h5"
    res, _, err = run_cli(["extract", few, "-o", out, "--model", f"hub:{handle}"])
    assert res.exit_code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "is not in the TF-Hub cache" in err and str(folder) in err
    assert f"curl -L '{handle}?tf-hub-format=compressed'" in err and "PRIMO_HUB_DOWNLOAD=1" in err
    assert not folder.exists() and not out.exists()
    # with downloads allowed, an unreachable server is the same kind of one-line error
    monkeypatch.setenv("PRIMO_HUB_DOWNLOAD", "1")
    res, _, err = run_cli(["extract", few, "-o", out, "--model", "hub:http://127.0.0.1:1/m/1"])
    assert res.exit_code == 2 and err.count("\n") == 1 and "cannot download TF-Hub module" in err
    assert "tar -xzf" in err and not out.exists()


def test_hub_archives_unpack_safely_without_tensorflow_hub(run_cli, few, tmp_path, hub_module):
    """primo reads TF-Hub modules with TensorFlow alone (tensorflow-hub would pull in tf-keras and
    a second TensorFlow wheel); an archive with an entry outside its folder is refused."""
    import io
    import sys

    module, _ = hub_module
    archive = tmp_path / "module.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(module, arcname="m")
    ids, X, meta = _hub_run(run_cli, few, tmp_path / "a.h5", archive)
    assert X.shape == (3, 6) and "tensorflow_hub" not in sys.modules
    descriptor = hashlib.sha1(str(archive.resolve()).encode()).hexdigest() + ".descriptor.txt"
    assert (tmp_path / "tfhub" / descriptor).read_text().startswith(f"Module: {archive.resolve()}\n")

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    res, _, err = run_cli(["extract", few, "-o", tmp_path / "e.h5", "--model", f"hub:{evil}"])
    assert res.exit_code == 1 and err.count("\n") == 1 and "unsafe entry '../outside.txt'" in err
    # a module whose entries declare more than primo unpacks: refused before any data is read
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        info = tarfile.TarInfo("saved_model.pb")
        info.size = 3 * 2 ** 30
        tar.addfile(info)   # the header alone: its declared size is what is checked
    res, _, err = run_cli(["extract", few, "-o", tmp_path / "b.h5", "--model",
                           f"hub:{bomb}"])
    assert res.exit_code == 1 and err.count("\n") == 1 and "would unpack to more than" in err
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "tfhub" / "outside.txt").exists()
    assert not list((tmp_path / "tfhub").glob("*.tmp"))  # the partial folder is gone


# --------------------------------------------------------------------------- identity checks
def test_extractor_mismatch():
    a = {"extractor": "resnet50", "weights_sha256": "a" * 64, "preprocessing": "p"}
    assert extractor_mismatch(a, dict(a)) is None
    assert extractor_mismatch(a, {**a, "extractor": "vgg16"}) == "extractor 'resnet50' vs 'vgg16'"
    assert "weights sha256 aaaaaaaaaaaa... vs bbbbbbbbbbbb..." in extractor_mismatch(
        a, {**a, "weights_sha256": "b" * 64})
    assert "preprocessing 'p' vs 'q'" in extractor_mismatch(a, {**a, "preprocessing": "q"})
    # a field one side does not record is not compared (stores from before it was recorded)
    assert extractor_mismatch(a, {"extractor": "resnet50"}) is None
    assert extractor_mismatch(None, a) is None


def test_model_refuses_features_from_other_weights(tmp_path):
    from primo.model_dir import PrimoModel

    meta = {"extractor": "resnet50", "weights_sha256": "a" * 64, "preprocessing": "p"}
    m = PrimoModel(tmp_path, {"features": {"dim": 2048, "extractor": "resnet50", "metadata": meta}})
    m.check_features(2048, dict(meta))
    with pytest.raises(DataError) as e:
        m.check_features(2048, {**meta, "weights_sha256": "b" * 64}, path="q.h5")
    msg = str(e.value)
    assert "q.h5" in msg and "different extractors" in msg and "weights sha256" in msg
    assert "\n" not in msg


def test_resume_with_other_weights_is_refused(few, tmp_path):
    meta = {"extractor": "resnet50", "weights_sha256": "a" * 64, "weights": "w.h5"}
    out = tmp_path / "f.h5"
    write_features(out, ["x"], np.ones((1, 2048), np.float32), meta)
    ext = get_extractor("pixels")
    ext.name, ext.dim, ext.weights_sha256, ext.weights_source = "resnet50", 2048, "b" * 64, "w.h5"
    with pytest.raises(UsageError, match="weights_sha256="):
        extract_images([few], out, ext, resume=True)


def test_list_models_rows():
    rows = {r["model"]: r for r in list_models()}
    assert {"vgg16", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "hub:PATH|HANDLE",
            "fashion-embed"} <= set(rows)
    assert rows["resnet50"]["dim"] == 2048 and rows["vgg16"]["dim"] == 4096
    assert rows["fashion-embed"]["present"] and not rows["resnet50"]["present"]


def test_query_images_are_extracted_like_the_training_features(run_cli, few, tmp_path):
    """`primo query --image` re-extracts with the options recorded in the card (here --invert)."""
    from primo.model_dir import PrimoModel
    from primo.workflows.query import query_features

    db = tmp_path / "db.h5"
    res, _, err = run_cli(["extract", few, "-o", db, "--model", "fashion-embed", "--invert"])
    assert res.exit_code == 0, err
    with FeatureStore.open(db) as fs:
        ids, X, meta = fs.ids.tolist(), fs.read(), fs.metadata
    assert meta["extractor_options"] == {"invert": True}
    model = PrimoModel(tmp_path, {"features": {"dim": 64, "extractor": "fashion-embed",
                                               "metadata": meta}})
    qids, Q = query_features(model, images=[few / f"{i}.png" for i in ids])
    assert qids.tolist() == ids and np.allclose(Q, X, atol=1e-6)
