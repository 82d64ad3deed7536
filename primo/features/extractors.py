"""Feature extractors: a batch of decoded images -> a batch of feature vectors.

Available extractors (``get_extractor(spec)``):

``vgg16`` (default)
    Keras ``VGG16`` with its classifier top, output of the ``fc2`` layer (4096-d, after ReLU): the
    features of Bee et al. Images are resized to 224 x 224 RGB and passed through
    ``keras.applications.vgg16.preprocess_input`` (RGB -> BGR, ImageNet channel means subtracted,
    no scaling). Weights: ``"imagenet"`` reads ``vgg16_weights_tf_dim_ordering_tf_kernels.h5``
    (553 MB, the file with the top layers) from the Keras cache folder
    (``$KERAS_HOME/models/`` or ``~/.keras/models/``); primo never downloads it. A path given with
    ``weights=PATH`` (``--weights PATH``) is loaded instead. ``weights="none"`` builds the network
    with random weights: for tests and timing only, the features mean nothing.
``hub:PATH``
    A TF-Hub / TensorFlow SavedModel *image feature-vector* module in a local folder (e.g. the
    ResNet-50 or MobileNet-V3 feature vectors of paper 004, downloaded beforehand and unpacked).
    The module is called on float32 RGB batches (N, H, W, 3) and must return (N, D). Input size:
    the module's signature when it fixes H and W, otherwise 224 (or ``input_size``). Value range:
    TF-Hub's image convention is RGB scaled to **[0, 1]** (``input_range="0-1"``, the default);
    modules exported with their own normalisation can take ``"0-255"`` or ``"-1-1"``.
``fashion-embed``
    The bundled 64-d triplet-loss embedding for Fashion-MNIST-like images (28 x 28 grayscale,
    bright object on dark background; see :mod:`primo.features.embed`).
``pixels``, ``pixels:SIZE``, ``pixels:SIZE:rgb``
    Raw pixels resized to SIZE x SIZE (default 28, grayscale), flattened, scaled to [0, 1]: a
    baseline that needs no network.

Every extractor describes itself in :meth:`Extractor.metadata` (name, version, input size,
preprocessing, weights source, dimension), which goes into the feature store's metadata.
TensorFlow / Keras are imported only when an extractor that needs them is built.
"""

from __future__ import annotations

import abc
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import DataError, MissingDependencyError, UsageError

__all__ = ["Extractor", "VGG16Extractor", "HubExtractor", "FashionEmbedExtractor", "PixelsExtractor",
           "get_extractor", "vgg16_weights_candidates", "VGG16_WEIGHTS_FILE", "MODELS"]

VGG16_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
VGG16_WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                     + VGG16_WEIGHTS_FILE)
MODELS = ("vgg16", "hub:PATH", "fashion-embed", "pixels")
_RANGES = {"0-1": (0.0, 1.0), "0-255": (0.0, 255.0), "-1-1": (-1.0, 1.0)}


def _import_keras():
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(f"this extractor needs TensorFlow and Keras ({e})",
                                     hint="pip install 'primo[ml]'") from None
    import keras

    return keras


class Extractor(abc.ABC):
    """Base class: ``extractor(images) -> float32 (N, dim)``.

    Attributes
    ----------
    name : str
        The model spec (``vgg16``, ``hub:/path``, ``fashion-embed``, ``pixels:28``).
    dim : int
        Output dimension.
    input_size : (int, int)
        (width, height) images are resized to.
    image_mode : {"RGB", "L"}
        Colour mode of the uint8 input batch.
    """

    name = "extractor"
    version = "1"
    dim = 0
    input_size = (224, 224)
    image_mode = "RGB"
    preprocessing = ""
    weights_source = "none"
    default_batch_size = 32

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if len(images) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        want = (self.input_size[1], self.input_size[0]) + ((3,) if self.image_mode == "RGB" else ())
        if images.shape[1:] != want:
            raise UsageError(f"{self.name} takes images of shape {want}, got {images.shape[1:]}")
        out = np.asarray(self._run(images), dtype=np.float32)
        if out.shape != (len(images), self.dim):
            raise DataError(f"{self.name} returned shape {out.shape}, expected ({len(images)}, {self.dim})")
        return out

    @abc.abstractmethod
    def _run(self, images):
        """The model on a checked uint8 batch."""

    def metadata(self) -> dict:
        """What goes into the feature store's metadata."""
        return {"extractor": self.name, "extractor_version": self.version, "dim": self.dim,
                "input_size": list(self.input_size), "image_mode": self.image_mode,
                "preprocessing": self.preprocessing, "weights": self.weights_source}


# --------------------------------------------------------------------------- VGG16
def _keras_home() -> Path:
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"]).expanduser()
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def vgg16_weights_candidates() -> list:
    """Where ``weights="imagenet"`` looks for the VGG16 weights file, in order."""
    cands = [_keras_home() / "models" / VGG16_WEIGHTS_FILE, Path("/tmp/.keras/models") / VGG16_WEIGHTS_FILE]
    out = []
    for c in cands:
        if c not in out:
            out.append(c)
    return out


class VGG16Extractor(Extractor):
    """VGG16 FC2 activations (4096-d) with the Keras VGG16 preprocessing.

    Parameters
    ----------
    weights : "imagenet", "none"/None, or a path
        ``"imagenet"`` reads the weights file from the Keras cache (never downloads);
        ``"none"`` random weights (testing / timing only); a path is a Keras VGG16 weights file
        with the top layers (``.h5`` or ``.weights.h5``).
    """

    version = "keras-applications-vgg16-fc2"
    dim = 4096
    input_size = (224, 224)
    preprocessing = ("resize to 224x224 RGB; keras.applications.vgg16.preprocess_input "
                     "(RGB->BGR, subtract ImageNet means 103.939/116.779/123.68, no scaling)")

    def __init__(self, weights="imagenet", batch_size: int = 32):
        self.name = "vgg16"
        path = self._resolve(weights)
        if path is not None:
            self._check_file(path)
        keras = _import_keras()
        base = keras.applications.VGG16(weights=None, include_top=True)
        if path is not None:
            self._load(base, path)
            self.weights_source = ("imagenet (" + str(path) + ")") if weights == "imagenet" else str(path)
        else:
            self.weights_source = "random (testing only)"
        self._model = keras.Model(base.inputs, base.get_layer("fc2").output, name="vgg16_fc2")
        self._pre = keras.applications.vgg16.preprocess_input
        self.default_batch_size = batch_size

    @staticmethod
    def _resolve(weights):
        if weights is None or (isinstance(weights, str) and weights.lower() in ("none", "random")):
            return None
        if isinstance(weights, str) and weights == "imagenet":
            for c in vgg16_weights_candidates():
                if c.is_file():
                    return c
            where = vgg16_weights_candidates()[0]
            raise UsageError(
                f"VGG16 ImageNet weights not found: put {VGG16_WEIGHTS_FILE} (553 MB, from "
                f"{VGG16_WEIGHTS_URL}) in {where.parent}/ or give it with --weights PATH",
                hint="--weights none runs with random weights, for testing only")
        p = Path(weights)
        if not p.exists():
            raise UsageError(f"weights file {p} does not exist",
                             hint=f"give the path of {VGG16_WEIGHTS_FILE}, or --weights imagenet")
        if p.is_dir():
            raise UsageError(f"weights {p} is a folder, expected a VGG16 weights file (.h5)",
                             hint="for a SavedModel folder use --model hub:PATH")
        return p

    @staticmethod
    def _check_file(path: Path):
        import h5py

        if not h5py.is_hdf5(path):
            raise DataError("not a Keras weights file (not HDF5)", path=path,
                            hint=f"give {VGG16_WEIGHTS_FILE} or a .weights.h5 file saved from VGG16")
        with h5py.File(path, "r") as f:
            g = f["model_weights"] if "model_weights" in f else f
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("layer_names", [])]
            if names and "fc2" not in names:
                raise DataError("weights file has no fc2 layer (is it the _notop file?)", path=path,
                                hint=f"FC2 features need the file with the top layers, {VGG16_WEIGHTS_FILE}")

    @staticmethod
    def _load(base, path: Path):
        try:
            base.load_weights(str(path))
        except Exception as e:  # Keras raises ValueError/KeyError/... with long texts
            msg = " ".join(str(e).split())[:200]
            raise DataError(f"cannot load VGG16 weights ({type(e).__name__}: {msg})", path=path,
                            hint=f"give {VGG16_WEIGHTS_FILE} or a .weights.h5 file saved from VGG16") from None

    def _run(self, images):
        x = self._pre(images.astype(np.float32))
        return self._model.predict_on_batch(x)


# --------------------------------------------------------------------------- TF-Hub / SavedModel
class HubExtractor(Extractor):
    """An image feature-vector module (TF-Hub format / TensorFlow SavedModel) from a local folder.

    Parameters
    ----------
    path : path
        The SavedModel folder (with ``saved_model.pb``).
    input_size : int, optional
        Side of the square input when the module does not fix it (default 224).
    input_range : {"0-1", "0-255", "-1-1"}
        Value range the module expects (TF-Hub image modules: "0-1").
    """

    version = "savedmodel"

    def __init__(self, path, input_size: int | None = None, input_range: str | None = None):
        path = Path(path)
        self.name = f"hub:{path}"
        if not path.exists():
            raise UsageError(f"module {path} does not exist",
                             hint="give the folder of an unpacked TF-Hub / SavedModel module")
        if not path.is_dir() or not ((path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()):
            raise DataError("not a TF-Hub / SavedModel module (no saved_model.pb in it)", path=path,
                            hint="give the unpacked module folder, e.g. a TF-Hub feature_vector download")
        input_range = input_range or "0-1"
        if input_range not in _RANGES:
            raise UsageError(f"unknown input range {input_range!r}", hint=f"use one of {', '.join(_RANGES)}")
        self._range = _RANGES[input_range]
        _import_keras()
        import tensorflow as tf

        try:
            obj = tf.saved_model.load(str(path))
        except Exception as e:
            msg = " ".join(str(e).split())[:200]
            raise DataError(f"cannot load the SavedModel ({type(e).__name__}: {msg})", path=path,
                            hint="the module may be damaged or need a newer TensorFlow") from None
        self._obj = obj
        fn, spec, kwargs, out_key = self._find_function(obj, path)
        self._fn, self._kwargs, self._out_key = fn, kwargs, out_key
        h, w = (spec.shape[1], spec.shape[2]) if spec.shape.rank == 4 else (None, None)
        if h is None or w is None:
            side = int(input_size or 224)
            h, w = h or side, w or side
        elif input_size and (int(input_size) != h or int(input_size) != w):
            raise UsageError(f"module {path} takes {w}x{h} images; --input-size {input_size} does not fit")
        self.input_size = (int(w), int(h))
        self._in_dtype = spec.dtype
        probe = self._call(np.zeros((1, self.input_size[1], self.input_size[0], 3), np.uint8), path)
        if probe.ndim != 2:
            raise DataError(f"not an image feature-vector module: it returns shape "
                            f"{tuple(probe.shape)} for one image, expected (1, D)", path=path,
                            hint="use a module of the feature_vector kind (e.g. .../feature_vector/5)")
        self.dim = int(probe.shape[1])
        if self.dim in (1000, 1001):
            print(f"primo: warning: {path} returns {self.dim} values per image, like an ImageNet "
                  f"classifier; feature-vector modules return embeddings (e.g. 2048 or 1280)",
                  file=sys.stderr)
        self.preprocessing = (f"resize to {self.input_size[0]}x{self.input_size[1]} RGB; scale to "
                              f"[{self._range[0]:g}, {self._range[1]:g}] (TF-Hub image convention: [0, 1])")
        self.weights_source = str(path)

    @staticmethod
    def _image_spec(args):
        """The single image TensorSpec among the flattened inputs, or None."""
        import tensorflow as tf

        specs = [s for s in tf.nest.flatten(args) if isinstance(s, tf.TensorSpec)]
        imgs = [s for s in specs if s.shape.rank == 4 and s.shape[-1] in (3, None) and s.dtype.is_floating]
        if len(imgs) == 1 and len(specs) == 1:
            return imgs[0]
        return None

    def _find_function(self, obj, path):
        not_fv = DataError("not an image feature-vector module: no function takes a batch of RGB "
                           "images (float32, N x H x W x 3)", path=path,
                           hint="use a TF-Hub image feature_vector module (TF2 SavedModel)")
        # 1. the object's __call__ (TF2 TF-Hub modules)
        call = getattr(obj, "__call__", None)
        concrete = list(getattr(call, "concrete_functions", []) or [])
        for cf in concrete:
            args, kwargs = cf.structured_input_signature
            spec = self._image_spec(args)
            if spec is None:
                continue
            kw = {}
            if "training" in kwargs:
                if kwargs["training"] is True:
                    continue
                kw = {"training": False}
            return call, spec, kw, None
        # 2. a serving signature
        sigs = getattr(obj, "signatures", {}) or {}
        for key in (["serving_default"] + [k for k in sigs if k != "serving_default"]):
            if key not in sigs:
                continue
            fn = sigs[key]
            _, kwargs = fn.structured_input_signature
            spec = self._image_spec(kwargs)
            if spec is None:
                continue
            name = next(iter(kwargs))
            outs = fn.structured_outputs
            out_key = None
            if isinstance(outs, dict):
                for cand in ("feature_vector", "default", "output_0", *outs.keys()):
                    if cand in outs:
                        out_key = cand
                        break
            return (lambda x, _fn=fn, _n=name: _fn(**{_n: x})), spec, {}, out_key
        raise not_fv

    def _call(self, images, path=None):
        import tensorflow as tf

        lo, hi = self._range
        x = images.astype(np.float32) * ((hi - lo) / 255.0) + lo
        try:
            out = self._fn(tf.constant(x, dtype=self._in_dtype), **self._kwargs)
        except Exception as e:
            msg = " ".join(str(e).split())[:200]
            raise DataError(f"the module failed on a batch of images ({type(e).__name__}: {msg})",
                            path=path or self.weights_source,
                            hint="is it an image feature-vector module?") from None
        if isinstance(out, dict):
            out = out[self._out_key] if self._out_key in out else next(iter(out.values()))
        elif isinstance(out, (list, tuple)):
            out = out[0]
        return np.asarray(out)

    def _run(self, images):
        return self._call(images)


# --------------------------------------------------------------------------- bundled / baselines
class FashionEmbedExtractor(Extractor):
    """The bundled Fashion-MNIST triplet embedding (64-d, unit length)."""

    input_size = (28, 28)
    image_mode = "L"
    default_batch_size = 512

    def __init__(self, weights=None, invert: bool = False):
        from .embed import ARCH_VERSION, load_embedder

        _import_keras()
        self.name = "fashion-embed"
        self.version = ARCH_VERSION
        self._model, meta = load_embedder(weights)
        self.dim = int(self._model.output_shape[-1])
        self.invert = bool(invert)
        self.preprocessing = ("resize to 28x28 grayscale; " + ("invert; " if invert else "")
                              + "scale to [0, 1] (object bright on dark background, as Fashion-MNIST)")
        self.weights_source = str(weights) if weights else "bundled primo/data/fashion_embed.npz"
        self._meta = meta

    def _run(self, images):
        from .embed import embed

        x = 255 - images if self.invert else images
        return embed(x, model=self._model)

    def metadata(self):
        d = super().metadata()
        d["embedder_map_at_10"] = self._meta.get("map_at_10")
        return d


class PixelsExtractor(Extractor):
    """Raw pixels: resized, flattened, scaled to [0, 1]."""

    version = "1"
    default_batch_size = 1024

    def __init__(self, size: int = 28, rgb: bool = False):
        size = int(size)
        if not 1 <= size <= 512:
            raise UsageError(f"pixels size must be between 1 and 512, got {size}")
        self.input_size = (size, size)
        self.image_mode = "RGB" if rgb else "L"
        self.dim = size * size * (3 if rgb else 1)
        self.name = f"pixels:{size}" + (":rgb" if rgb else "")
        self.preprocessing = (f"resize to {size}x{size} {'RGB' if rgb else 'grayscale'}; flatten; "
                              f"scale to [0, 1]")
        self.weights_source = "none"

    def _run(self, images):
        return images.reshape(len(images), -1).astype(np.float32) / 255.0


def get_extractor(spec: str = "vgg16", weights=None, *, input_size: int | None = None,
                  input_range: str | None = None, invert: bool = False) -> Extractor:
    """Build an extractor from its command-line spec (see the module docstring).

    Parameters
    ----------
    spec : str
        ``vgg16``, ``hub:PATH``, ``fashion-embed``, ``pixels[:SIZE[:rgb]]``.
    weights : str or path, optional
        VGG16: ``"imagenet"`` (default), ``"none"`` (random, testing only) or a weights file;
        fashion-embed: another ``.npz`` from ``scripts/train_fashion_embed.py``.
    input_size, input_range : hub modules only (see :class:`HubExtractor`).
    invert : bool
        fashion-embed only: invert grayscale (for dark objects on light backgrounds).
    """
    spec = str(spec)
    if spec == "vgg16":
        return VGG16Extractor("imagenet" if weights is None else weights)
    if spec.startswith("hub:"):
        if weights is not None:
            raise UsageError("--weights does not apply to hub: modules (their weights are inside)")
        if not spec[4:]:
            raise UsageError("hub: needs a path, e.g. --model hub:/models/resnet50_feature_vector")
        return HubExtractor(spec[4:], input_size=input_size, input_range=input_range)
    if spec == "fashion-embed":
        return FashionEmbedExtractor(weights, invert=invert)
    if spec == "pixels" or spec.startswith("pixels:"):
        if weights is not None:
            raise UsageError("--weights does not apply to pixels")
        parts = spec.split(":")
        try:
            size = int(parts[1]) if len(parts) > 1 else 28
        except ValueError:
            raise UsageError(f"bad pixels spec {spec!r}", hint="use pixels, pixels:32 or pixels:32:rgb") from None
        if len(parts) > 3 or (len(parts) == 3 and parts[2] != "rgb"):
            raise UsageError(f"bad pixels spec {spec!r}", hint="use pixels, pixels:32 or pixels:32:rgb")
        return PixelsExtractor(size, rgb=len(parts) == 3)
    raise UsageError(f"unknown model {spec!r}", hint=f"use one of {', '.join(MODELS)}")
