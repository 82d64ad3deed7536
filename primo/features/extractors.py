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

import abc
import dataclasses
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import DataError, MissingDependencyError, UsageError

__all__ = ["Extractor", "KerasAppExtractor", "VGG16Extractor", "HubExtractor", "FashionEmbedExtractor",
           "PixelsExtractor", "get_extractor", "vgg16_weights_candidates", "weights_candidates",
           "VGG16_WEIGHTS_FILE", "MODELS", "KERAS_APPLICATIONS", "KerasApplication", "list_models",
           "format_model_list", "extractor_mismatch", "resolve_hub_handle", "hub_cache_dir",
           "hub_module_dir", "HUB_DOWNLOAD_ENV"]

MODELS = ("vgg16", "resnet50", "mobilenet_v3_large", "efficientnet_b0", "hub:PATH|HANDLE",
          "fashion-embed", "pixels")
_RANGES = {"0-1": (0.0, 1.0), "0-255": (0.0, 255.0), "-1-1": (-1.0, 1.0)}
HUB_DOWNLOAD_ENV = "PRIMO_HUB_DOWNLOAD"
_IMAGENET_CAFFE = "RGB->BGR, subtract ImageNet means 103.939/116.779/123.68, no scaling"


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
        The model spec (``vgg16``, ``resnet50``, ``hub:/path``, ``fashion-embed``, ``pixels:28``).
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
    weights_sha256 = None
    options: dict = {}  # the get_extractor() keywords that rebuild this extractor (input_size, ...)
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
                "preprocessing": self.preprocessing, "weights": self.weights_source,
                "weights_sha256": self.weights_sha256, "extractor_options": dict(self.options)}


def extractor_mismatch(a: dict | None, b: dict | None) -> str | None:
    """How two extractor descriptions (store metadata / a model card's) differ, or None.

    Compared: the extractor name, the weights' sha256 and the preprocessing, each only when both
    sides record it (stores written before primo recorded a field still compare on the others).
    """
    a, b = a or {}, b or {}
    ea, eb = a.get("extractor"), b.get("extractor")
    sa, sb = a.get("weights_sha256"), b.get("weights_sha256")
    if ea and eb and ea != eb:
        return f"extractor {ea!r} vs {eb!r}"
    if sa and sb and sa != sb:
        return f"extractor {ea!r} with weights sha256 {sa[:12]}... vs {sb[:12]}..."
    pa, pb = a.get("preprocessing"), b.get("preprocessing")
    if pa and pb and pa != pb:
        return f"extractor {ea!r} with preprocessing {pa!r} vs {pb!r}"
    return None


def _file_hashes(path) -> tuple[str, str]:
    """(sha256, md5) of a file in one pass (Keras records md5s of its weights files)."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


# --------------------------------------------------------------------------- Keras applications
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


# --------------------------------------------------------------------------- TF-Hub / SavedModel
def _is_url(handle: str) -> bool:
    return str(handle).startswith(("http://", "https://"))


def _is_archive(path) -> bool:
    return str(path).endswith((".tar.gz", ".tgz", ".tar"))


def hub_cache_dir() -> Path:
    """The TF-Hub cache: ``$TFHUB_CACHE_DIR``, else ``<tmp>/tfhub_modules`` (tensorflow_hub's)."""
    import tempfile

    d = os.environ.get("TFHUB_CACHE_DIR")
    return Path(d).expanduser() if d else Path(tempfile.gettempdir()) / "tfhub_modules"


def hub_module_dir(handle: str) -> Path:
    """The folder ``tensorflow_hub`` unpacks ``handle`` into: the cache / sha1 of the handle."""
    return hub_cache_dir() / hashlib.sha1(str(handle).encode("utf8")).hexdigest()


def _cached(module_dir: Path) -> bool:
    # tensorflow_hub's test: the folder exists and is not empty
    return module_dir.is_dir() and any(module_dir.iterdir())


def _unpack_module(fileobj, key: str, what) -> Path:
    """Unpack a compressed module (a tar stream) into the TF-Hub cache folder of ``key``, as
    ``tensorflow_hub`` does: into a temporary folder beside it, renamed when complete, with a
    ``<folder>.descriptor.txt`` naming the handle. An existing non-empty folder is kept; an
    archive holding one folder (the module's) gives that folder."""
    import shutil
    import socket
    import tarfile
    import tempfile
    import time

    module_dir = hub_module_dir(key)
    if _cached(module_dir):
        return module_dir
    module_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=module_dir.name + ".", suffix=".tmp", dir=module_dir.parent))
    from ..io import ZIP_LIMIT

    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    total = count = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                # declared sizes first: a bomb is refused before its data is inflated
                total, count = total + max(int(member.size), 0), count + 1
                if total > ZIP_LIMIT or count > 100_000:
                    raise DataError(f"the compressed module would unpack to more than "
                                    f"{ZIP_LIMIT / 2**20:,.0f} MiB or 100,000 files (a damaged "
                                    f"file or a bomb)", path=what,
                                    hint="restore the module from its source")
                name = os.path.normpath(member.name)
                if name.startswith(("/", "..")) or member.issym() or member.islnk():
                    raise DataError(f"the compressed module holds an unsafe entry {member.name!r}",
                                    path=what, hint="give a .tar.gz of a SavedModel folder")
                if member.isdir() or member.isfile():
                    tar.extract(member, tmp, set_attrs=False, **safe)
        if not _cached(tmp):
            raise DataError("the compressed module is empty", path=what,
                            hint="give a .tar.gz of a SavedModel folder")
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the module from other users of the cache
        top = list(tmp.iterdir())
        src = tmp
        if len(top) == 1 and top[0].is_dir() and not top[0].name.startswith("saved_model"):
            src = top[0]  # an archive of the module's folder (tar -czf m.tgz module/)
        try:
            os.rename(src, module_dir)
        except OSError:  # another process unpacked it first
            if not _cached(module_dir):
                raise
        with open(str(module_dir) + ".descriptor.txt", "w", encoding="utf-8") as fh:
            fh.write(f"Module: {key}\nDownload Time: {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                     f"Downloader Hostname: {socket.gethostname()} (PID:{os.getpid()})\n")
    except (tarfile.TarError, EOFError, OSError) as e:
        msg = " ".join(str(e).split())[:200]
        raise DataError(f"cannot unpack the compressed module ({type(e).__name__}: {msg})",
                        path=what, hint="give a .tar.gz of a SavedModel folder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return module_dir


def resolve_hub_handle(handle: str) -> Path:
    """A ``hub:`` handle -> the local module folder (the TF-Hub cache layout of ``tensorflow_hub``).

    A folder is used as it is. A ``.tar.gz`` module is unpacked into the TF-Hub cache (once). A
    URL is looked up in the TF-Hub cache; one that is not there is an error naming the folder to
    put it in, unless ``PRIMO_HUB_DOWNLOAD=1`` lets primo download its compressed form (then a
    failed download is an error too; the network is given 60 s to answer).
    """
    handle = str(handle)
    if _is_url(handle):
        module_dir = hub_module_dir(handle)
        if not _cached(module_dir):
            allowed = os.environ.get(HUB_DOWNLOAD_ENV, "") not in ("", "0")
            sep = "&" if "?" in handle else "?"
            where = (f"on a machine with internet run curl -L '{handle}{sep}tf-hub-format=compressed' "
                     f"-o module.tar.gz, bring it here and unpack it into {module_dir}/ (mkdir -p "
                     f"that folder, tar -xzf module.tar.gz -C it; TFHUB_CACHE_DIR sets the cache), "
                     f"or give the .tar.gz or the unpacked folder as hub:PATH")
            if not allowed:
                raise MissingDependencyError(
                    f"TF-Hub module {handle} is not in the TF-Hub cache {hub_cache_dir()}: {where}",
                    hint=f"{HUB_DOWNLOAD_ENV}=1 lets primo download it from this machine")
            import urllib.request

            try:
                with urllib.request.urlopen(f"{handle}{sep}tf-hub-format=compressed",
                                            timeout=60) as response:
                    return _unpack_module(response, handle, handle)
            except Exception as e:  # URLError, HTTPError, DataError, with long texts
                msg = " ".join(str(e).split())[:160]
                raise MissingDependencyError(
                    f"cannot download TF-Hub module {handle} ({type(e).__name__}: {msg}): {where}") from None
        return module_dir
    path = Path(handle).expanduser()
    if not path.exists():
        raise UsageError(f"module {path} does not exist",
                         hint="give the folder of an unpacked TF-Hub / SavedModel module, a .tar.gz "
                              "module or a https:// TF-Hub handle")
    if path.is_file() and _is_archive(path):
        # unpacked into the cache folder of its absolute path (as tensorflow_hub does)
        with open(path, "rb") as fh:
            return _unpack_module(fh, str(path.resolve()), path)
    return path


def _tree_sha256(folder: Path) -> str:
    """sha256 over a module folder's files (relative path and content, in sorted order)."""
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(folder)).encode() + b"\0")
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


class HubExtractor(Extractor):
    """An image feature-vector module (TF-Hub format / TensorFlow SavedModel).

    Parameters
    ----------
    handle : str or path
        A SavedModel folder (with ``saved_model.pb``), a ``.tar.gz`` module, or a TF-Hub /
        Kaggle Models ``https://`` handle in the TF-Hub cache (see :func:`resolve_hub_handle`).
    input_size : int, optional
        Side of the square input when the module does not fix it (default 224).
    input_range : {"0-1", "0-255", "-1-1"}
        Value range the module expects (TF-Hub image modules: "0-1").
    """

    version = "savedmodel"

    def __init__(self, handle, input_size: int | None = None, input_range: str | None = None):
        handle = str(handle)
        self.name = f"hub:{handle}"
        input_range = input_range or "0-1"
        if input_range not in _RANGES:
            raise UsageError(f"unknown input range {input_range!r}", hint=f"use one of {', '.join(_RANGES)}")
        self._range = _RANGES[input_range]
        path = resolve_hub_handle(handle)
        if not path.is_dir() or not ((path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file()):
            raise DataError("not a TF-Hub / SavedModel module (no saved_model.pb in it)", path=path,
                            hint="give the unpacked module folder, e.g. a TF-Hub feature_vector download")
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
            raise UsageError(f"module {path} takes {w}x{h} images; input size {input_size} does "
                             "not fit", option="input_size")
        self.input_size = (int(w), int(h))
        self.options = {"input_range": input_range}
        if spec.shape.rank != 4 or spec.shape[1] is None or spec.shape[2] is None:
            self.options["input_size"] = int(w)
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
        self.weights_source = str(path) if str(path) == handle else f"{handle} ({path})"
        self.weights_sha256 = _tree_sha256(path)

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


def _hub_cached_handles() -> list:
    """(handle, folder) of the modules in the TF-Hub cache (their descriptor files)."""
    out = []
    cache = hub_cache_dir()
    if not cache.is_dir():
        return out
    for desc in sorted(cache.glob("*.descriptor.txt")):
        folder = cache / desc.name[: -len(".descriptor.txt")]
        try:
            first = desc.read_text(encoding="utf-8", errors="replace").splitlines()[0]
        except (OSError, IndexError):
            continue
        if first.startswith("Module: ") and _cached(folder):
            out.append((first[len("Module: "):].strip(), folder))
    return out


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
