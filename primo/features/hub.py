"""TF-Hub image feature-vector modules (TF2 SavedModels) as feature extractors: the TF-Hub
cache, compressed modules unpacked with their sizes checked, and :class:`HubExtractor`.

Described in :mod:`primo.features.extractors` (every name here is importable from there).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import DataError, MissingDependencyError, UsageError
from .extractor_base import Extractor, _import_keras

__all__ = ["HubExtractor", "resolve_hub_handle", "hub_cache_dir", "hub_module_dir",
           "HUB_DOWNLOAD_ENV"]

_RANGES = {"0-1": (0.0, 1.0), "0-255": (0.0, 255.0), "-1-1": (-1.0, 1.0)}
HUB_DOWNLOAD_ENV = "PRIMO_HUB_DOWNLOAD"


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
