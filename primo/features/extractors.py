"""Feature extractors: a batch of decoded images -> a batch of feature vectors.

Available extractors (``get_extractor(spec)``; ``primo extract --list-models`` says which weights
are present):

``vgg16`` (default), ``resnet50``, ``mobilenet_v3_large``, ``efficientnet_b0``
    Keras applications with their ImageNet weights (see :data:`KERAS_APPLICATIONS`). ``vgg16`` is
    the paper's feature: the ``fc2`` layer of VGG16 with its classifier top (4096-d, after ReLU,
    224 x 224 only). The others drop the classifier and average the last convolutional feature map
    over space (global average pooling, the convention of paper 004): ResNet50 2048-d,
    MobileNetV3-Large 960-d, EfficientNet-B0 1280-d; their input side may be changed
    (``input_size``, at least 32; the weights were trained at 224). Each has its own
    preprocessing: VGG16 and ResNet50 ``preprocess_input`` (RGB -> BGR, ImageNet channel means
    subtracted, no scaling), MobileNetV3 and EfficientNet take 0-255 RGB and rescale inside the
    model. Weights: ``"imagenet"`` reads the Keras weights file (e.g.
    ``resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5``) from the Keras cache folder
    (``$KERAS_HOME/models/`` or ``~/.keras/models/``), where ``keras.applications`` downloads it;
    primo never downloads. A path given with ``weights=PATH`` (``--weights PATH``) is loaded
    instead. ``weights="none"`` builds the network with random weights: for tests and timing
    only, the features mean nothing. The weights file's sha256 goes into the metadata.
``hub:HANDLE``
    A TF-Hub image *feature-vector* module (TF2 SavedModel), loaded with
    ``tf.saved_model.load`` (the ``tensorflow-hub`` package is not needed: it would pull in
    ``tf-keras`` and with it a second TensorFlow wheel): a local folder (e.g. a SavedModel written
    by ``keras.Model.export``), a compressed module (``.tar.gz``, unpacked into the TF-Hub cache),
    or a ``https://`` handle (tfhub.dev or Kaggle Models) found in the TF-Hub cache
    (``$TFHUB_CACHE_DIR``, default ``<tmp>/tfhub_modules``, one folder per handle named by the
    sha1 of the handle, the layout ``tensorflow_hub`` uses, so its downloads are found too). A
    handle that is not in the cache is an error saying where to put the module;
    ``PRIMO_HUB_DOWNLOAD=1`` lets primo download it instead (the handle's compressed form,
    ``?tf-hub-format=compressed``). The module is called on float32 RGB batches (N, H, W, 3) and must return
    (N, D). Input size: the module's signature when it fixes H and W, otherwise 224 (or
    ``input_size``). Value range: TF-Hub's image convention is RGB scaled to **[0, 1]**
    (``input_range="0-1"``, the default); modules exported with their own normalisation can take
    ``"0-255"`` or ``"-1-1"``. The metadata records a sha256 of the module's files.
``fashion-embed``
    The bundled 64-d triplet-loss embedding for Fashion-MNIST-like images (28 x 28 grayscale,
    bright object on dark background; see :mod:`primo.features.embed`).
``pixels``, ``pixels:SIZE``, ``pixels:SIZE:rgb``
    Raw pixels resized to SIZE x SIZE (default 28, grayscale), flattened, scaled to [0, 1]: a
    baseline that needs no network.

Every extractor describes itself in :meth:`Extractor.metadata` (name, version, input size,
preprocessing, weights source and sha256, dimension), which goes into the feature store's metadata
and from there into the model card; :func:`extractor_mismatch` says whether two such descriptions
name different feature spaces (stores and models from different extractors are not mixed).
TensorFlow / Keras are imported only when an extractor that needs them is built.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError

# the extractors live in their own modules (the base class, the Keras applications, TF-Hub);
# every name is importable from here
from .extractor_base import Extractor, _file_hashes, _import_keras, extractor_mismatch
from .hub import (HUB_DOWNLOAD_ENV, HubExtractor, _hub_cached_handles, hub_cache_dir,
                  hub_module_dir, resolve_hub_handle)
from .keras_apps import (KERAS_APPLICATIONS, VGG16_WEIGHTS_FILE, KerasAppExtractor,
                         KerasApplication, VGG16Extractor, _find_weights,
                         vgg16_weights_candidates, weights_candidates)

__all__ = ["Extractor", "KerasAppExtractor", "VGG16Extractor", "HubExtractor", "FashionEmbedExtractor",
           "PixelsExtractor", "get_extractor", "vgg16_weights_candidates", "weights_candidates",
           "VGG16_WEIGHTS_FILE", "MODELS", "KERAS_APPLICATIONS", "KerasApplication", "list_models",
           "format_model_list", "extractor_mismatch", "resolve_hub_handle", "hub_cache_dir",
           "hub_module_dir", "HUB_DOWNLOAD_ENV"]

MODELS = ("vgg16", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "hub:PATH|HANDLE",
          "fashion-embed", "pixels")


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
        self.options = {"invert": True} if self.invert else {}
        self.preprocessing = ("resize to 28x28 grayscale; " + ("invert; " if invert else "")
                              + "scale to [0, 1] (object bright on dark background, as Fashion-MNIST)")
        self.weights_source = str(weights) if weights else "bundled primo/data/fashion_embed.npz"
        from .embed import _default_weights

        self.weights_sha256 = _file_hashes(Path(weights) if weights else _default_weights())[0]
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
        ``vgg16``, ``resnet50``, ``mobilenet_v3_large``, ``efficientnet_b0``, ``hub:HANDLE``,
        ``fashion-embed``, ``pixels[:SIZE[:rgb]]``.
    weights : str or path, optional
        Keras applications: ``"imagenet"`` (default), ``"none"`` (random, testing only) or a
        weights file; fashion-embed: another ``.npz`` from ``experiments/train_fashion_embed.py``.
    input_size : int, optional
        Input side: hub modules that do not fix it, and the resizable Keras applications.
    input_range : hub modules only (see :class:`HubExtractor`).
    invert : bool
        fashion-embed only: invert grayscale (for dark objects on light backgrounds).
    """
    spec = str(spec)
    if spec in KERAS_APPLICATIONS:
        return KerasAppExtractor(spec, "imagenet" if weights is None else weights, input_size=input_size)
    if spec.startswith("hub:"):
        if weights is not None:
            raise UsageError("weights do not apply to hub: modules (their weights are inside)",
                             option="weights")
        if not spec[4:]:
            raise UsageError("hub: needs a path or a handle, e.g. `model` hub:/models/resnet50_feature_vector",
                             option="model")
        return HubExtractor(spec[4:], input_size=input_size, input_range=input_range)
    if spec == "fashion-embed":
        return FashionEmbedExtractor(weights, invert=invert)
    if spec == "pixels" or spec.startswith("pixels:"):
        if weights is not None:
            raise UsageError("weights do not apply to pixels", option="weights")
        parts = spec.split(":")
        try:
            size = int(parts[1]) if len(parts) > 1 else 28
        except ValueError:
            raise UsageError(f"bad pixels spec {spec!r}", hint="use pixels, pixels:32 or pixels:32:rgb") from None
        if len(parts) > 3 or (len(parts) == 3 and parts[2] != "rgb"):
            raise UsageError(f"bad pixels spec {spec!r}", hint="use pixels, pixels:32 or pixels:32:rgb")
        return PixelsExtractor(size, rgb=len(parts) == 3)
    raise UsageError(f"unknown model {spec!r}", hint=f"use one of {', '.join(MODELS)}")


def list_models() -> list:
    """What ``--model`` accepts and whether its weights are here: a list of dicts (``model``,
    ``dim`` (None: the module's or the size's), ``input``, ``preprocessing``, ``weights``: where they
    come from, ``present``, ``path``: the file or folder)."""
    rows = []
    for app in KERAS_APPLICATIONS.values():
        found = _find_weights(app.name)
        rows.append({"model": app.name, "dim": app.dim, "input": "224" + ("+" if app.resizable else ""),
                     "preprocessing": app.preprocessing.format(w=224, h=224),
                     "weights": f"{app.weights_mb} MB, from {app.url}",
                     "present": found is not None,
                     "path": str(found or weights_candidates(app.name)[0])})
    cached = _hub_cached_handles()
    rows.append({"model": "hub:PATH|HANDLE", "dim": None, "input": "module",
                 "preprocessing": "RGB scaled to [0, 1] (--input-range)",
                 "weights": f"inside the module; TF-Hub cache ({len(cached)} handles)",
                 "present": bool(cached),
                 "path": str(hub_cache_dir())})
    for handle, folder in cached:
        rows.append({"model": f"hub:{handle}", "dim": None, "input": "module",
                     "preprocessing": "RGB scaled to [0, 1] (--input-range)",
                     "weights": "TF-Hub cache", "present": True, "path": str(folder)})
    from .embed import EMBED_DIM, _default_weights

    emb = _default_weights()
    rows.append({"model": "fashion-embed", "dim": EMBED_DIM, "input": "28 gray",
                 "preprocessing": "scale to [0, 1] (--invert for dark objects on light)",
                 "weights": "bundled with primo", "present": emb.is_file(), "path": str(emb)})
    rows.append({"model": "pixels[:SIZE[:rgb]]", "dim": None, "input": "SIZE",
                 "preprocessing": "flatten; scale to [0, 1]", "weights": "none needed",
                 "present": True, "path": ""})
    return rows


def format_model_list(rows=None) -> str:
    """:func:`list_models` as the text ``primo extract --list-models`` prints (one line each)."""
    rows = list_models() if rows is None else rows
    lines = [f"{'model':<20} {'dim':>5}  {'input':<7} weights"]
    for r in rows:
        dim = "-" if r["dim"] is None else str(r["dim"])
        if r["model"] == "hub:PATH|HANDLE":
            state = f"{r['weights']}: {r['path']}; or a folder / .tar.gz"
        elif not r["path"]:
            state = r["weights"]
        else:
            state = ("present: " if r["present"] else "MISSING: ") + r["path"]
            if not r["present"]:
                state += f" ({r['weights']})"
        lines.append(f"{r['model']:<20} {dim:>5}  {r['input']:<7} {state}")
    lines.append("input: the side images are resized to (224+: --input-size changes it). primo never "
                 "downloads weights: put a MISSING file where shown, or give --weights PATH.")
    return "\n".join(lines)
