"""The pictures of a results page: where each document's picture comes from (:class:`ImageSource`)
and its thumbnail, written once and shared by all queries (:class:`ThumbnailCache`).

The order in which pictures are looked for is described in :mod:`primo.workflows.report` (every
name here is importable from there).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

import numpy as np

from ..errors import UsageError

__all__ = ["ImageSource", "ThumbnailCache", "THUMB_SIZE"]

THUMB_SIZE = 96
_FMNIST = re.compile(r"^fmnist-(train|test)-(\d+)$")
_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


def _warn(msg: str) -> None:
    text = f"primo: warning: {' '.join(msg.split())}"
    try:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)
    except ImportError:  # pragma: no cover
        print(text, file=sys.stderr)


# --------------------------------------------------------------------------------------------------
# where pictures come from
# --------------------------------------------------------------------------------------------------
class ImageSource:
    """Finds the picture of each document (see the module docstring).

    Parameters
    ----------
    stores : list of paths
        Feature stores (database and queries) whose ``/paths`` record the source files.
    images_dir : path, optional
        A folder holding the pictures, named by ImageID (``--images``).
    bundled : bool
        Draw ``fmnist-<split>-<row>`` documents from the Fashion-MNIST arrays.
    """

    def __init__(self, stores=(), images_dir=None, bundled: bool = True):
        self.stores = [Path(s) for s in (stores or []) if s is not None]
        self.images_dir = None if images_dir is None else Path(images_dir)
        if self.images_dir is not None and not self.images_dir.is_dir():
            raise UsageError(f"the images folder {self.images_dir} is not a folder",
                             option="images_dir", hint="give the folder that holds the documents' pictures")
        self.bundled = bundled
        self._index = None
        self._fmnist = {}
        self.stores_with_paths = []

    # ---------------------------------------------------------------- lookup
    def find(self, ids) -> dict:
        """``{ImageID: Path | uint8 array | None}`` for every ID (None: no picture known)."""
        ids = list(dict.fromkeys(str(i) for i in ids))
        found: dict = {}
        recorded: dict = {}
        for sp in self.stores:
            if not sp.is_file():
                continue
            from ..features.store import FeatureStore

            with FeatureStore.open(sp) as fs:
                if not fs.has_paths:
                    continue
                if sp not in self.stores_with_paths:
                    self.stores_with_paths.append(sp)
                have = fs.existing_ids()
                want = [i for i in ids if i in have and i not in recorded]
                for i, p in zip(want, fs.paths_of(want)):
                    if p:
                        recorded[i] = (p, sp.parent)
        for i in ids:
            hit = None
            if i in recorded:
                hit = self._recorded(*recorded[i])
            if hit is None and self.images_dir is not None:
                hit = self._in_dir(i, recorded.get(i, ("", None))[0])
            if hit is None and self.bundled:
                hit = self._fashion(i)
            if hit is None and i in recorded:
                hit = Path(recorded[i][0])        # missing: the placeholder names it
            found[i] = hit
        return found

    @staticmethod
    def _recorded(p: str, store_dir: Path):
        path = Path(p)
        if path.is_file():
            return path
        parts = path.parts
        for n in (1, 2, 3):
            if len(parts) > n:
                c = store_dir.joinpath(*parts[-n:])
                if c.is_file():
                    return c
        return None

    def _in_dir(self, image_id: str, recorded: str):
        d = self.images_dir
        from ..io import path_inside

        # the ImageID comes from the pool or a counts file, which may be someone else's
        first = path_inside(d, image_id, what="ImageID", follow_links=False)
        cands = [first] + [d / (image_id + e) for e in _EXTS]
        if recorded:
            cands.append(d / Path(recorded).name)
        for c in cands:
            if c.is_file():
                return c
        if self._index is None:
            self._index = {}
            for root, dirs, files in os.walk(d):
                dirs[:] = sorted(x for x in dirs if not x.startswith("."))
                for f in sorted(files):
                    if Path(f).suffix.lower() in _EXTS:
                        self._index.setdefault(Path(f).stem, Path(root) / f)
        return self._index.get(image_id)

    def _fashion(self, image_id: str):
        m = _FMNIST.match(image_id)
        if not m:
            return None
        split, row = m.group(1), int(m.group(2))
        if split not in self._fmnist:
            self._fmnist[split] = self._load_fashion(split)
        arr = self._fmnist[split]
        if isinstance(arr, dict):
            return arr.get(row)
        return arr[row] if arr is not None and row < len(arr) else None

    @staticmethod
    def _load_fashion(split):
        from ..errors import PrimoError
        from ..features import datasets

        try:
            return datasets.load_fashion_mnist(split)[0]
        except PrimoError:
            pass
        if split != "test":
            return None
        try:
            with np.load(datasets.data_path("fashion_demo.npz"), allow_pickle=False) as z:
                return dict(zip(z["index"].tolist(), z["images"]))
        except OSError:
            return None

    def why_none(self) -> str:
        """Why no picture was found (for the page)."""
        parts = []
        if not self.stores:
            parts.append("no feature store was given")
        elif not self.stores_with_paths:
            names = ", ".join(s.name for s in self.stores)
            parts.append(f"the feature store ({names}) does not record the documents' image "
                         "files (it was made from arrays or by an older primo)")
        else:
            parts.append("the image files the feature store records were not found")
        parts.append("no --images folder was given" if self.images_dir is None
                     else f"--images {self.images_dir} holds no file named by the documents' IDs")
        return ("; ".join(parts) + ". Give --images DIR (pictures named <ImageID>.png/.jpg), or "
                "re-extract the features with primo extract, which records each image's file.")


# --------------------------------------------------------------------------------------------------
# thumbnails
# --------------------------------------------------------------------------------------------------
class ThumbnailCache:
    """Small pictures beside the page, one per document, written once however often shown.

    Parameters
    ----------
    folder : path
        Where the thumbnails go (created).
    url_prefix : str
        How the page refers to ``folder`` (relative, e.g. ``report_files/thumbs/``).
    size : int
        Longest side in pixels (96); smaller pictures are kept at their size.
    warn : callable, optional
        Called with a one-line message for each picture drawn as a placeholder (default: stderr,
        at most ``max_warnings`` lines, then a count).

    Attributes
    ----------
    problems : list of (ImageID, source, reason)
        Pictures drawn as the placeholder.
    """

    def __init__(self, folder, url_prefix: str = "", size: int = THUMB_SIZE, warn=None,
                 max_warnings: int = 20, placeholder_url: str | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.url_prefix = url_prefix
        self.size = int(size)
        self._warn = warn or _warn
        self.max_warnings = max_warnings
        self.problems: list = []
        self._done: dict = {}
        self._placeholder_url = placeholder_url
        self.placeholder_path = None
        self.written = 0

    def placeholder(self) -> str:
        """URL of the placeholder picture (written on first use)."""
        if self._placeholder_url is None:
            from PIL import Image, ImageDraw

            s = self.size
            im = Image.new("L", (s, s), 228)
            dr = ImageDraw.Draw(im)
            dr.rectangle([0, 0, s - 1, s - 1], outline=150)
            dr.line([s // 4, s // 4, 3 * s // 4, 3 * s // 4], fill=150, width=3)
            dr.line([s // 4, 3 * s // 4, 3 * s // 4, s // 4], fill=150, width=3)
            self.placeholder_path = self.folder / "placeholder.png"
            im.save(self.placeholder_path, optimize=True)
            self._placeholder_url = self.url_prefix + "placeholder.png"
        return self._placeholder_url

    def _problem(self, image_id, source, reason) -> str:
        self.problems.append((image_id, None if source is None else str(source), reason))
        n = len(self.problems)
        if n <= self.max_warnings:
            where = f" ({source})" if source is not None and not isinstance(source, np.ndarray) \
                else ""
            self._warn(f"no picture of document {image_id}{where}: {reason}; drawn as a "
                       "placeholder")
        elif n == self.max_warnings + 1:
            self._warn("more documents without a picture; the page lists them all")
        return self.placeholder()

    def url(self, image_id: str, source) -> str:
        """The thumbnail of ``image_id`` from ``source`` (a file, a uint8 array, or None)."""
        image_id = str(image_id)
        if image_id in self._done:
            return self._done[image_id]
        if source is None:
            u = self._problem(image_id, None, "no image file is known for it")
        else:
            try:
                u = self._write(image_id, source)
            except Exception as e:  # any decoding failure: a placeholder, never a crash
                reason = " ".join(str(e).split()) or type(e).__name__
                if isinstance(source, (str, Path)) and not Path(source).exists():
                    reason = "the file does not exist"
                u = self._problem(image_id, source, reason[:200])
        self._done[image_id] = u
        return u

    def _write(self, image_id, source) -> str:
        from PIL import Image, ImageOps

        if isinstance(source, np.ndarray):
            im = Image.fromarray(np.ascontiguousarray(source, dtype=np.uint8))
        else:
            im = Image.open(source)
            if im.format == "JPEG":
                im.draft("RGB", (self.size * 2, self.size * 2))
            im.load()
            im = ImageOps.exif_transpose(im)
        if im.mode in ("1", "L", "I;16", "I", "F"):
            im = im.convert("L")
            small = True
        else:
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB")
            small = max(im.size) <= 48
        if max(im.size) > self.size:
            im.thumbnail((self.size, self.size), Image.LANCZOS)
        if im.size[0] < 1 or im.size[1] < 1:
            raise ValueError("empty picture")
        digest = hashlib.sha1(image_id.encode("utf-8")).hexdigest()[:10]
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", image_id)[:60] + "-" + digest
        if small:
            name = stem + ".png"
            im.save(self.folder / name, optimize=True)
        else:
            name = stem + ".jpg"
            im.save(self.folder / name, quality=82, optimize=True)
        self.written += 1
        return self.url_prefix + name
