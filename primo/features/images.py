"""Finding and loading images from real collections (Pillow).

Inputs
------
``collect_images`` accepts any mix of

* image files (``.jpg``, ``.png``, ``.gif``, ``.bmp``, ``.tif``, ``.webp``, ``.ppm``/``.pgm``, ...);
* folders, searched recursively (hidden files and folders are ignored, files are taken in sorted
  order, only image extensions are considered);
* list files (``.txt``, ``.lst``, ``.list``, or any text file that is not an image): one path per
  line, relative paths taken relative to the list file's folder; blank lines and lines starting
  with ``#`` are ignored; a listed path that does not exist is skipped with a warning.

Document IDs are the file stem (``photos/cat_01.jpg`` -> ``cat_01``) or, with ``ids="path"``, the
path relative to the folder given (``photos/cat_01.jpg`` given as folder ``photos`` ->
``cat_01.jpg``; a file given directly or listed keeps the path as written). Two different files
with the same ID are an error that suggests ``--ids path``.

Loading
-------
Each image is decoded completely (so truncated files are caught), rotated by its EXIF orientation
(``ImageOps.exif_transpose``), converted to RGB (grayscale, palette, CMYK, 16-bit; transparent
pixels are composited on white), and resized to the extractor's input size (squashed, like Keras'
``load_img``; bilinear by default; JPEGs are decoded at a reduced scale first when much larger than
the target, which is faster and barely changes the result). Files that cannot be decoded (not an
image, truncated, corrupt, too large) are *skipped*: a warning on stderr, an entry in the output's
``skipped`` list, and extraction goes on.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

__all__ = ["IMAGE_EXTENSIONS", "LIST_EXTENSIONS", "ImageRef", "ImageError", "collect_images",
           "load_image", "to_rgb", "iter_image_batches", "warn_skipped", "RESAMPLE"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib",
                              ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".ico",
                              ".tga"})
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
RESAMPLE = ("nearest", "bilinear", "bicubic", "lanczos")


class ImageError(DataError):
    """An image that cannot be decoded (extraction skips it with a warning)."""


@dataclasses.dataclass(frozen=True)
class ImageRef:
    """One image to extract: its file and its document ID."""

    path: Path
    doc_id: str


def warn_skipped(path, reason) -> None:
    """Print ``primo: warning: skipped PATH: REASON`` on stderr (safe beside a progress bar)."""
    msg = f"primo: warning: skipped {path}: {' '.join(str(reason).split())}"
    try:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stderr)
    except ImportError:  # pragma: no cover
        print(msg, file=sys.stderr)


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _looks_like_image(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    sigs = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"II*\x00", b"MM\x00*", b"RIFF")
    return head.startswith(sigs)


def _read_list(path: Path):
    """Paths listed in a list file: [(Path, line_number, as_written)]."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    except OSError as e:
        raise UsageError(f"cannot read list file {path} ({e.strerror or e})") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        p = Path(os.path.expanduser(s))
        out.append((p if p.is_absolute() else path.parent / p, n, s))
    return out


def _walk(folder: Path):
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
        for name in sorted(files):
            if not _is_hidden(name):
                yield Path(root) / name


def collect_images(inputs, ids: str = "stem"):
    """Expand files, folders and list files into image references.

    Parameters
    ----------
    inputs : iterable of paths
    ids : {"stem", "path"}
        Document ID scheme (see the module docstring).

    Returns
    -------
    refs : list of ImageRef
        In input order (folders sorted); the same file given twice appears once.
    skipped : list of (path, reason)
        Listed files that do not exist.

    Raises
    ------
    UsageError
        An input that does not exist, a folder or list with no images, no inputs at all.
    DataError
        Two different files with the same document ID.
    """
    if ids not in ("stem", "path"):
        raise UsageError(f"unknown document ID scheme {ids!r}", hint="use 'stem' or 'path'")
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise UsageError("no images given", hint="give image files, folders or list files")
    found: list[tuple[Path, str]] = []  # (file, id if ids == "path")
    skipped: list[tuple[str, str]] = []

    def add_folder(folder: Path):
        files = list(_walk(folder))
        imgs = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
        if not imgs:
            other = f"; it has {len(files)} other file{'s' if len(files) != 1 else ''}" if files else ""
            raise UsageError(f"folder {folder} contains no images{other}",
                             hint="looked for .jpg, .jpeg, .png, .gif, .bmp, .tif, .webp, ... files "
                                  "in it and its subfolders")
        for f in imgs:
            found.append((f, f.relative_to(folder).as_posix()))

    for p in inputs:
        if not p.exists():
            raise UsageError(f"input {p} does not exist", hint="check the path")
        if p.is_dir():
            add_folder(p)
            continue
        ext = p.suffix.lower()
        if ext in IMAGE_EXTENSIONS or (ext not in LIST_EXTENSIONS and _looks_like_image(p)):
            found.append((p, p.as_posix()))
            continue
        listed = _read_list(p)
        if listed is None:  # binary, not a known image: let the loader decide (and skip it)
            found.append((p, p.as_posix()))
            continue
        if not listed:
            raise UsageError(f"list file {p} names no images",
                             hint="write one image path per line")
        for q, n, written in listed:
            if q.is_dir():
                add_folder(q)
            elif q.exists():
                found.append((q, Path(written).as_posix()))
            else:
                reason = f"listed in {p} line {n} but does not exist"
                skipped.append((str(q), reason))
                warn_skipped(q, reason)

    refs: list[ImageRef] = []
    by_id: dict[str, Path] = {}
    seen_files: set = set()
    for f, rel in found:
        key = os.path.realpath(f)
        if key in seen_files:
            continue
        seen_files.add(key)
        doc_id = f.stem if ids == "stem" else rel
        other = by_id.get(doc_id)
        if other is not None:
            hint = ("name documents by their relative path with --ids path" if ids == "stem"
                    else "rename one of the files or give them from one folder")
            raise DataError(f"two images have the document ID {doc_id!r}: {other} and {f}", hint=hint)
        by_id[doc_id] = f
        refs.append(ImageRef(f, doc_id))
    if not refs and not skipped:
        raise UsageError("no images found in the inputs", hint="give image files, folders or list files")
    return refs, skipped


def _resample(name: str):
    from PIL import Image

    table = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
             "lanczos": Image.LANCZOS}
    if name not in table:
        raise UsageError(f"unknown resampling {name!r}", hint=f"use one of {', '.join(RESAMPLE)}")
    return table[name]


def to_rgb(im, background=(255, 255, 255)):
    """Any Pillow image -> an RGB image (alpha composited on ``background``; 16-bit scaled to 8-bit)."""
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if (mode.startswith("I;16") or (a.size and a.max() > 255)) else 255.0
        if mode == "F" and a.size and a.max() <= 1.0:
            top = 1.0
        a = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info) \
        or (mode in ("L", "RGB", "1") and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return im.convert("RGB")


def load_image(path, size=None, *, mode: str = "RGB", resample: str = "bilinear") -> np.ndarray:
    """Decode one image file into a uint8 array (H x W x 3 for RGB, H x W for ``mode="L"``).

    Parameters
    ----------
    path : path
    size : int or (width, height), optional
        Resize to this size (squash); None keeps the original size.
    mode : {"RGB", "L"}
    resample : {"nearest", "bilinear", "bicubic", "lanczos"}

    Raises
    ------
    ImageError
        The file is not an image Pillow can decode, or it is truncated / corrupt.
    """
    from PIL import Image, ImageFile, ImageOps

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    path = Path(path)
    if isinstance(size, int):
        size = (size, size)
    flt = _resample(resample)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if size is not None and im.format == "JPEG":
                    # decode at 1/2, 1/4 or 1/8 scale when the file is much larger than needed
                    im.draft("RGB" if mode == "RGB" else "L", (size[0] * 2, size[1] * 2))
                im.load()
                try:
                    im = ImageOps.exif_transpose(im)
                except Exception:  # broken EXIF: keep the image unrotated
                    pass
                im = to_rgb(im)
                if mode == "L":
                    im = im.convert("L")
                elif mode != "RGB":
                    raise UsageError(f"unknown image mode {mode!r}", hint="use 'RGB' or 'L'")
                if size is not None and im.size != tuple(size):
                    im = im.resize(tuple(size), flt)
                return np.asarray(im, dtype=np.uint8)
    except UsageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"image is too large to decode safely ({e})", path=path) from None
    except Image.DecompressionBombWarning as e:
        raise ImageError(f"image is too large to decode safely ({e})", path=path) from None
    except Image.UnidentifiedImageError:
        raise ImageError("not an image (Pillow cannot identify it)", path=path) from None
    except FileNotFoundError:
        raise ImageError("file disappeared", path=path) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError,
            MemoryError, RuntimeError) as e:
        text = str(e) or type(e).__name__
        if "truncated" in text.lower():
            text = f"truncated or corrupt image ({text})"
        else:
            text = f"corrupt or unsupported image ({text})"
        raise ImageError(text, path=path) from None


def _load_many(args):
    """Worker: decode a list of paths -> (ok_positions, array, [(path, reason)])."""
    paths, size, mode, resample = args
    arrays, ok, bad = [], [], []
    for k, p in enumerate(paths):
        try:
            arrays.append(load_image(p, size, mode=mode, resample=resample))
            ok.append(k)
        except ImageError as e:
            bad.append((str(p), e.raw_message))
    if arrays:
        batch = np.stack(arrays)
    else:
        shape = (0, size[1], size[0]) if size is not None else (0, 0, 0)
        batch = np.empty(shape + ((3,) if mode == "RGB" else ()), dtype=np.uint8)
    return ok, batch, bad


def iter_image_batches(refs, batch_size: int = 32, size=None, *, mode: str = "RGB",
                       resample: str = "bilinear", mapper=None, on_skip=warn_skipped):
    """Decode images in batches, streaming: yield ``(ids, images, skipped)`` per batch.

    ``images`` is uint8 (n, H, W, 3) (or (n, H, W) for ``mode="L"``) for the ``n`` images of the
    batch that decoded; ``skipped`` lists ``(path, reason)`` of the others (each also passed to
    ``on_skip``). ``size`` must be given (a batch needs one shape). With a ``mapper`` from
    :func:`primo.parallel.get_mapper`, batches are decoded in worker processes, a few batches ahead.
    """
    if size is None:
        raise UsageError("iter_image_batches needs a size")
    if isinstance(size, int):
        size = (size, size)
    _resample(resample)
    refs = list(refs)
    batch_size = max(1, int(batch_size))
    chunks = [refs[a:a + batch_size] for a in range(0, len(refs), batch_size)]
    tasks = (([r.path for r in c], tuple(size), mode, resample) for c in chunks)
    if mapper is None:
        results = map(_load_many, tasks)
    else:
        results = mapper.imap(_load_many, tasks)
    for chunk, (ok, arr, bad) in zip(chunks, results):
        for p, reason in bad:
            if on_skip is not None:
                on_skip(p, reason)
        yield [chunk[k].doc_id for k in ok], arr, bad
