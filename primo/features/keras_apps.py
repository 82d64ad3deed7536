"""Keras applications as feature extractors: :data:`KERAS_APPLICATIONS` (VGG16, ResNet50,
MobileNetV3-Large, EfficientNet-B0), :class:`KerasAppExtractor`, and where their ImageNet weights
are looked for (the Keras cache folder; primo never downloads).

Described in :mod:`primo.features.extractors` (every name here is importable from there).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import DataError, MissingDependencyError, UsageError
from .extractor_base import Extractor, _file_hashes, _import_keras

__all__ = ["KerasApplication", "KERAS_APPLICATIONS", "KerasAppExtractor", "VGG16Extractor",
           "weights_candidates", "vgg16_weights_candidates", "VGG16_WEIGHTS_FILE"]

_IMAGENET_CAFFE = "RGB->BGR, subtract ImageNet means 103.939/116.779/123.68, no scaling"


@dataclasses.dataclass(frozen=True)
class KerasApplication:
    """A Keras application as a feature extractor (one row of :data:`KERAS_APPLICATIONS`)."""

    name: str             # the --model name
    title: str            # how people write it
    constructor: str      # keras.applications.<constructor>
    weights_file: str     # the file keras.applications downloads into ~/.keras/models/
    url_dir: str          # where Keras downloads it from
    weights_mb: int
    weights_md5: str      # Keras' file_hash of that file
    dim: int
    top_layer: str | None   # output layer of the model with its classifier top; None: no top, avg pooling
    preprocess: str | None  # keras.applications.<preprocess>.preprocess_input before the model
    preprocessing: str      # the description recorded in the metadata ({w}, {h}: the input size)
    resizable: bool         # the input size may differ from 224 (no dense layers before the output)

    @property
    def url(self) -> str:
        return self.url_dir + self.weights_file


_KA = "https://storage.googleapis.com/tensorflow/keras-applications/"
KERAS_APPLICATIONS = {a.name: a for a in [
    KerasApplication(
        "vgg16", "VGG16", "VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels.h5", _KA + "vgg16/",
        553, "64373286793e3c8b2b4e3219cbf3544b", 4096, "fc2", "vgg16",
        "resize to {w}x{h} RGB; keras.applications.vgg16.preprocess_input (" + _IMAGENET_CAFFE + ")",
        False),
    KerasApplication(
        "resnet50", "ResNet50", "ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _KA + "resnet/", 95, "4d473c1dd8becc155b73f8504c6f6626", 2048, None, "resnet50",
        "resize to {w}x{h} RGB; keras.applications.resnet50.preprocess_input (" + _IMAGENET_CAFFE
        + "); global average pooling of the last convolutional block", True),
    KerasApplication(
        "mobilenet_v3_large", "MobileNetV3-Large", "MobileNetV3Large",
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", _KA + "mobilenet_v3/", 12,
        "07fb09a5933dd0c8eaafa16978110389", 960, None, None,
        "resize to {w}x{h} RGB; 0-255 into the model, which rescales to [-1, 1] (x/127.5 - 1); "
        "global average pooling of the last convolution", True),
    KerasApplication(
        "efficientnet_b0", "EfficientNet-B0", "EfficientNetB0", "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/", 16,
        "50bc09e76180e00e4465e1a485ddc09d", 1280, None, None,
        "resize to {w}x{h} RGB; 0-255 into the model, which scales to [0, 1] and normalizes by the "
        "ImageNet mean and std (as keras.applications with weights='imagenet'); global average "
        "pooling of the last convolution", True),
]}
VGG16_WEIGHTS_FILE = KERAS_APPLICATIONS["vgg16"].weights_file
VGG16_WEIGHTS_URL = KERAS_APPLICATIONS["vgg16"].url
_TOP_LAYERS = ("predictions", "logits", "fc1000", "probs")
_EFFICIENTNET_STD = (0.229, 0.224, 0.225)


def _keras_home() -> Path:
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def weights_candidates(model: str = "vgg16") -> list:
    """Where ``weights="imagenet"`` looks for a Keras application's weights file, in order."""
    name = KERAS_APPLICATIONS[model].weights_file
    cands = [_keras_home() / "models" / name, Path("/tmp/.keras/models") / name]
    out = []
    for c in cands:
        if c not in out:
            out.append(c)
    return out


def vgg16_weights_candidates() -> list:
    """Where ``weights="imagenet"`` looks for the VGG16 weights file, in order."""
    return weights_candidates("vgg16")


def _find_weights(model: str):
    """The first weights file of ``model`` found in the Keras cache, or None."""
    return next((c for c in weights_candidates(model) if c.is_file()), None)


class KerasAppExtractor(Extractor):
    """A Keras application (:data:`KERAS_APPLICATIONS`) as a feature extractor.

    Parameters
    ----------
    model : str
        ``vgg16``, ``resnet50``, ``mobilenet_v3_large`` or ``efficientnet_b0``.
    weights : "imagenet", "none"/None, or a path
        ``"imagenet"`` reads the weights file from the Keras cache (never downloads);
        ``"none"`` random weights (testing / timing only); a path is a weights file of the same
        network (``.h5`` as Keras downloads it, or a ``.weights.h5`` saved from the model).
    input_size : int, optional
        Side of the square input (default 224; not for ``vgg16``, whose dense layers fix it).
    """

    def __init__(self, model: str, weights="imagenet", *, input_size: int | None = None,
                 batch_size: int = 32):
        if model not in KERAS_APPLICATIONS:
            raise UsageError(f"unknown Keras application {model!r}",
                             hint=f"use one of {', '.join(KERAS_APPLICATIONS)}")
        app = self.app = KERAS_APPLICATIONS[model]
        self.name = app.name
        self.version = f"keras-applications-{app.name}-" + (app.top_layer or "avgpool")
        self.dim = app.dim
        side = 224 if input_size is None else int(input_size)
        if side != 224 and not app.resizable:
            raise UsageError(f"{app.name} takes 224x224 images (its dense layers fix the size); "
                             f"input size {side} does not fit", option="input_size")
        if side < 32:
            raise UsageError(f"{app.name} needs images of at least 32x32, got input size {side}",
                             option="input_size")
        self.input_size = (side, side)
        self.options = {"input_size": side} if app.resizable else {}
        self.preprocessing = app.preprocessing.format(w=side, h=side)
        path = self._resolve(weights)
        if path is not None:
            self._check_file(path)
        keras = _import_keras()
        build = getattr(keras.applications, app.constructor)
        if app.top_layer:
            base = build(weights=None, include_top=True)
        else:
            base = build(weights=None, include_top=False, pooling="avg", input_shape=(side, side, 3))
        if path is not None:
            self._load(base, path)
            sha, md5 = _file_hashes(path)
            self.weights_sha256 = sha
            genuine = md5 == app.weights_md5
            if weights == "imagenet" and not genuine:
                print(f"primo: warning: {path} is not the file keras.applications downloads "
                      f"(md5 {md5}, expected {app.weights_md5}): a damaged download or other weights",
                      file=sys.stderr)
            self.weights_source = f"imagenet ({path})" if genuine else str(path)
            if app.name == "efficientnet_b0":
                self._imagenet_normalization(base)
        else:
            self.weights_source = "random (testing only)"
        self._model = (keras.Model(base.inputs, base.get_layer(app.top_layer).output,
                                   name=f"{app.name}_{app.top_layer}") if app.top_layer else base)
        self._pre = (getattr(keras.applications, app.preprocess).preprocess_input
                     if app.preprocess else None)
        self.default_batch_size = batch_size

    def _resolve(self, weights):
        app = self.app
        if weights is None or (isinstance(weights, str) and weights.lower() in ("none", "random")):
            return None
        if isinstance(weights, str) and weights == "imagenet":
            found = _find_weights(app.name)
            if found is not None:
                return found
            where = weights_candidates(app.name)[0]
            raise MissingDependencyError(
                f"{app.title} ImageNet weights not found: put {app.weights_file} ({app.weights_mb} "
                f"MB, from {app.url}) in {where.parent}/ or give it with `weights` PATH",
                option="weights", hint="`weights` none runs with random weights, for testing only")
        p = Path(weights)
        if not p.exists():
            raise UsageError(f"weights file {p} does not exist", option="weights",
                             hint=f"give the path of {app.weights_file}, or `weights` imagenet")
        if p.is_dir():
            raise UsageError(f"weights {p} is a folder, expected a {app.title} weights file (.h5)",
                             option="weights",
                             hint="for a SavedModel folder use `model` hub:PATH")
        return p

    def _check_file(self, path: Path):
        import h5py

        app = self.app
        if not h5py.is_hdf5(path):
            raise DataError("not a Keras weights file (not HDF5)", path=path,
                            hint=f"give {app.weights_file} or a .weights.h5 file saved from {app.title}")
        with h5py.File(path, "r") as f:
            g = f["model_weights"] if "model_weights" in f else f
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("layer_names", [])]
        if names and app.top_layer and app.top_layer not in names:
            raise DataError(f"weights file has no {app.top_layer} layer (is it the _notop file?)",
                            path=path, hint=f"{app.top_layer.upper()} features need the file with "
                                            f"the top layers, {app.weights_file}")
        if names and not app.top_layer and any(t in names for t in _TOP_LAYERS):
            raise DataError("weights file has the classifier top; pooled features need the file "
                            "without it", path=path, hint=f"give {app.weights_file}")

    def _load(self, base, path: Path):
        try:
            base.load_weights(str(path))
        except Exception as e:  # Keras raises ValueError/KeyError/... with long texts
            msg = " ".join(str(e).split())[:200]
            raise DataError(f"cannot load {self.app.title} weights ({type(e).__name__}: {msg})",
                            path=path, hint=f"give {self.app.weights_file} or a .weights.h5 file "
                                            f"saved from {self.app.title}") from None

    @staticmethod
    def _imagenet_normalization(base):
        """What ``EfficientNetB0(weights="imagenet")`` adds: its Normalization layer holds the
        ImageNet variance, but the original network divides by the variance (not the std), so
        Keras adds a Rescaling by 1/sqrt(std) (tensorflow#49930). Folded into the variance here:
        (x - mean) / sqrt(var * std)."""
        import keras

        norms = [layer for layer in base.layers if isinstance(layer, keras.layers.Normalization)]
        if len(norms) != 1:
            raise DataError(f"EfficientNet-B0 has {len(norms)} Normalization layers, expected 1")
        norm = norms[0]
        var = np.asarray(norm.adapt_variance.numpy(), dtype=np.float32)
        norm.adapt_variance.assign(var * np.asarray(_EFFICIENTNET_STD, dtype=np.float32).reshape(var.shape))
        norm.finalize_state()

    def _run(self, images):
        x = images.astype(np.float32)
        if self._pre is not None:
            x = self._pre(x)
        return self._model.predict_on_batch(x)


class VGG16Extractor(KerasAppExtractor):
    """VGG16 FC2 activations (4096-d) with the Keras VGG16 preprocessing (see
    :class:`KerasAppExtractor`)."""

    def __init__(self, weights="imagenet", batch_size: int = 32):
        super().__init__("vgg16", weights, batch_size=batch_size)
