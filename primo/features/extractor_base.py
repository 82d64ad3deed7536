"""The base of every feature extractor: :class:`Extractor` (``extractor(images) -> float32 (N, dim)``
and its metadata), :func:`extractor_mismatch` (whether two descriptions name different feature
spaces), and the helpers the extractors share.

The extractors are described in :mod:`primo.features.extractors` (every name here is
importable from there).
"""

from __future__ import annotations

import abc
import hashlib

import numpy as np

from ..errors import DataError, MissingDependencyError, UsageError

__all__ = ["Extractor", "extractor_mismatch"]


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
