"""A trained primo model directory (``MODEL/``): write, load and validate it.

Layout written by ``primo train``::

    MODEL/
      encoder.keras      features -> 80 x 4 soft one-hot (Keras 3, loads with safe_mode=True)
      predictor.keras    (target one-hot, query one-hot) -> yield of target + revcomp(query)
      card.json          the model card (below)
      metrics.csv        one row per training round (primo.training.metrics)
      yields.png         simulated yields of held-out pairs by distance (cf. paper Fig. 2D/E)
      logs/              TensorBoard event files
      checkpoint/        the last round's state, for ``primo train --resume`` (not needed to use
                         the model; may be deleted)

``card.json`` (JSON object):

``format`` / ``format_version``
    ``"primo-model"`` / 1.
``primo_version``, ``provenance``
    The primo that wrote it (a model only loads in a primo of the same major.minor version) and
    :func:`primo.io.provenance` of the run.
``files``
    ``{"encoder": {"path", "sha256"}, "predictor": {"path", "sha256"}}``: a file whose hash
    differs makes :func:`load_model` fail ("tampered").
``threshold``
    ``{"value", "method": "fixed"|"quantile"|"neighbors", ...}``: the similarity threshold and how
    it was chosen; ``"neighbors"`` (primo's default) adds ``neighbors`` (K), ``requested`` and
    ``units`` (distances in units of each pair's neighbourhood radius, threshold 1).
``layout``
    Primers and lengths of the oligo / probe layout the model was trained for.
``features``
    ``{"dim", "extractor", "metadata"}``: what the encoder expects (metadata copied from the store:
    the extractor's preprocessing, weights and ``weights_sha256`` among it; features from another
    extractor, weights file or preprocessing are refused, see :meth:`PrimoModel.check_features`).
``encoder``, ``predictor``
    Architecture settings (the predictor's ``kind``: one of ``PREDICTORS``).
``objective``
    ``{"name", "margin", "rank_candidates", "primo_default"}``: the encoder's objective;
    ``primo_default`` names primo's default configuration and why it was chosen.
``training``, ``simulator``, ``data``, ``versions``, ``metrics``
    Training settings and timing (``training.timing``: every phase, their sum and the
    simulator's and TensorFlow's shares), simulator settings (backend, temperature, Na+, loop
    enthalpies, stacks, a parameter perturbation if any), training data (path, n, fingerprint,
    held-out and skipped rows), library versions, final held-out metrics.
``selection``
    ``{"kept_round", "last_round", "by"}``: which round the saved model is.
``capture_eval``
    The held-out mini-database captured during training (documents, queries, k, protocol, the
    figures of each evaluated round, the best).
``hybridization``
    ``{"temperature_c", "training_temperature_c", "note"}``: the protocol's hybridization
    temperature (the anneal's end, what ``primo simulate`` uses) and the training simulator's.
``outputs``
    The run's other files: ``metrics`` (metrics.csv), ``figure`` (yields.png), ``tensorboard``,
    ``checkpoint``.
``checksum``
    sha256 of the card's canonical JSON without this field: an edited card fails to load.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from . import __version__
from .io import json_default, path_inside
from .constants import PREDICTORS, TEMPERATURE_C  # noqa: F401  (PREDICTORS: the card's vocabulary)
from .errors import DataError, UsageError

__all__ = ["PrimoModel", "load_model", "write_card", "read_card", "card_checksum", "file_sha256",
           "load_keras_file", "hybridization_temperature", "training_temperature",
           "CARD_NAME", "ENCODER_NAME", "PREDICTOR_NAME", "FORMAT_NAME", "FORMAT_VERSION",
           "versions_compatible"]

FORMAT_NAME = "primo-model"
FORMAT_VERSION = 1
CARD_NAME = "card.json"
ENCODER_NAME = "encoder.keras"
PREDICTOR_NAME = "predictor.keras"

_REQUIRED = ["format", "format_version", "primo_version", "files", "threshold", "layout",
             "features", "encoder", "predictor", "training", "checksum"]


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _canonical(card: dict) -> bytes:
    c = {k: v for k, v in card.items() if k != "checksum"}
    return json.dumps(c, sort_keys=True, separators=(",", ":"), default=json_default,
                      allow_nan=True).encode()


def card_checksum(card: dict) -> str:
    """sha256 of the card's canonical JSON (sorted keys), the ``checksum`` field left out."""
    return "sha256:" + hashlib.sha256(_canonical(card)).hexdigest()




def load_keras_file(loader, path, what: str):
    """``loader(path)`` (a Keras ``.keras`` loader), any failure turned into one
    :class:`DataError` that says which file and why (Keras raises long, nested errors: a truncated
    archive ends in "file not found", a foreign layer in "Could not locate class")."""
    import zipfile

    from .errors import PrimoError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"the {what} file is missing", path=path,
                        hint="restore the model directory, or train again")
    from .io import check_zip_size

    check_zip_size(path, f"{what} file")   # before Keras inflates it
    try:
        model = loader(path)
    except PrimoError:
        raise
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 -- whatever Keras raises, one line naming the file
        text = " ".join(str(e).split())
        if isinstance(e, (zipfile.BadZipFile, EOFError)) or not zipfile.is_zipfile(path):
            why = "the file is truncated or not a .keras archive"
        elif "Lambda" in text or "safe_mode" in text:
            why = ("it holds a Lambda layer (arbitrary code), which primo refuses to load "
                   "(safe_mode)")
        elif "Could not locate" in text or "Unknown layer" in text:
            import re

            m = re.search(r"(?:Could not locate|Unknown layer)[^']*'([^']+)'", text)
            why = (f"it is not a primo {what}" + (f" (it holds layer class {m.group(1)!r})" if m
                                                  else "") + "; was another file copied over it?")
        else:
            why = f"Keras cannot load it: {type(e).__name__}: {text[:160]}"
        raise DataError(f"cannot load the {what}: {why}", path=path,
                        hint="restore the model directory, or train again") from None
    n_in = len(getattr(model, "inputs", None) or [])
    expected = {"encoder": 1, "predictor": 2}.get(what)
    if expected is not None and n_in != expected:
        names = ", ".join(str(getattr(t, "name", "?")).split(":")[0] for t in model.inputs)
        raise DataError(f"cannot load the {what}: it is not a primo {what} (it takes {n_in} "
                        f"input(s): {names}); was another file copied over it?", path=path,
                        hint="restore the model directory, or train again")
    return model


def versions_compatible(a: str, b: str) -> bool:
    """Same major.minor version (0.x releases may change the model format at each minor)."""
    pa, pb = str(a).split("."), str(b).split(".")
    return pa[:2] == pb[:2]


def write_card(directory, card: dict) -> dict:
    """Fill in ``format``, versions, file hashes and checksum; write ``card.json`` atomically."""
    from .io import atomic_file

    directory = Path(directory)
    card = copy.deepcopy(card)
    card["format"] = FORMAT_NAME
    card["format_version"] = FORMAT_VERSION
    card["primo_version"] = __version__
    card["files"] = {
        "encoder": {"path": ENCODER_NAME, "sha256": file_sha256(directory / ENCODER_NAME)},
        "predictor": {"path": PREDICTOR_NAME, "sha256": file_sha256(directory / PREDICTOR_NAME)},
    }
    card.pop("checksum", None)
    card = _jsonable(json.loads(json.dumps(card, default=json_default, allow_nan=True)))
    card["checksum"] = card_checksum(card)
    text = json.dumps(card, indent=2, allow_nan=False)
    with atomic_file(directory / CARD_NAME) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return card


def _jsonable(obj):
    """NaN -> None so that card.json is strict JSON (the checksum is computed the same way)."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


def read_card(path) -> dict:
    """Read and validate ``MODEL/card.json`` (schema, version, checksum, file hashes).

    Raises
    ------
    UsageError
        ``path`` is missing or not a model directory.
    DataError
        The card is unreadable, from an incompatible primo, edited, or a model file was changed.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"model directory {path} does not exist",
                         hint="train one (primo train)")
    if not path.is_dir():
        raise UsageError(f"{path} is not a model directory", hint="give the MODEL/ written by `primo train`")
    card_path = path / CARD_NAME
    if not card_path.exists():
        hint = ("training did not finish; continue it (primo train, `resume`)"
                if (path / "checkpoint").exists() else
                "give the MODEL/ directory written by `primo train`")
        raise DataError(f"not a primo model directory (no {CARD_NAME})", path=path, hint=hint)
    try:
        raw = card_path.read_text(encoding="utf-8")
        card = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"model card is not valid JSON ({e})", path=card_path,
                        hint="the card was damaged; retrain or restore it") from None
    if not isinstance(card, dict):
        raise DataError("model card is not a JSON object", path=card_path)
    if card.get("format") != FORMAT_NAME:
        raise DataError(f"not a primo model card (format {card.get('format')!r})", path=card_path)
    missing = [k for k in _REQUIRED if k not in card]
    if missing:
        raise DataError(f"model card lacks field(s) {', '.join(missing)}", path=card_path,
                        hint="the card was edited or written by another tool; retrain the model")
    fv = card["format_version"]
    if not isinstance(fv, int) or isinstance(fv, bool) or fv < 1:
        raise DataError(f"model card field format_version is {json.dumps(fv)[:30]}, expected a "
                        "whole number >= 1", path=card_path,
                        hint="the card was edited; restore the original card.json or retrain")
    if not isinstance(card["primo_version"], str):
        raise DataError("model card field primo_version is not a version string",
                        path=card_path, hint="the card was edited; restore it or retrain")
    if fv > FORMAT_VERSION:
        raise DataError(f"model card format {card['format_version']} is newer than this primo "
                        f"reads ({FORMAT_VERSION})", path=card_path, hint="upgrade primo")
    if not versions_compatible(card["primo_version"], __version__):
        raise DataError(f"model was made by primo {card['primo_version']}, this is primo "
                        f"{__version__}", path=card_path,
                        hint=f"retrain it with this primo, or use primo {_mm(card['primo_version'])}.x")
    if card["checksum"] != card_checksum(card):
        raise DataError("model card was modified after training (checksum mismatch): tampered",
                        path=card_path, hint="restore the original card.json or retrain the model")
    _check_card_types(card, card_path)
    kind = (card.get("predictor") or {}).get("kind", "local-match")

    if kind not in PREDICTORS:
        raise DataError(f"model card names predictor {kind!r}, which primo {__version__} does not "
                        f"know", path=card_path,
                        hint=f"upgrade primo, or use a model trained with the predictor "
                             f"{'|'.join(PREDICTORS)}")
    for key in ("encoder", "predictor"):
        entry = card["files"].get(key) or {}
        if entry.get("path"):
            path_inside(path, entry["path"], what=f"model card field files.{key}.path",
                        path=card_path)
        f = path / str(entry.get("path", ""))
        if not entry.get("path") or not f.is_file():
            raise DataError(f"model file {entry.get('path')!r} is missing", path=path,
                            hint="copy the whole MODEL/ directory")
        if file_sha256(f) != entry.get("sha256"):
            raise DataError(f"{f.name} does not match the sha256 in {CARD_NAME}: tampered or "
                            f"damaged", path=f, hint="restore the original file or retrain the model")
    return card


def _check_card_types(card: dict, where) -> None:
    """The types of the card fields primo reads: a DataError naming the file and the field
    instead of a traceback (the checksum does not stop an edit: anyone can recompute it)."""
    import math

    def get(field):
        v = card
        for k in field.split("."):
            v = v.get(k) if isinstance(v, dict) else None
        return v

    def bad(field, want):
        raise DataError(f"model card field {field} is {json.dumps(get(field), default=str)[:30]}, "
                        f"expected {want}", path=where,
                        hint="the card was edited; restore the original card.json or retrain")

    def whole(v, low):
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    def number(v):
        return (isinstance(v, (int, float)) and not isinstance(v, bool)
                and math.isfinite(v))

    if not whole(card.get("format_version"), 1):
        bad("format_version", "a whole number >= 1")
    if not isinstance(card.get("primo_version"), str):
        bad("primo_version", "a version string")
    for field in ("files", "threshold", "layout", "features", "encoder", "predictor", "training"):
        if not isinstance(card.get(field), dict):
            bad(field, "an object")
    for field in ("hybridization", "simulator", "files.encoder", "files.predictor"):
        if get(field) is not None and not isinstance(get(field), dict):
            bad(field, "an object")
    for key in ("encoder", "predictor"):
        for sub in ("path", "sha256"):
            v = get(f"files.{key}.{sub}")
            if v is not None and not isinstance(v, str):
                bad(f"files.{key}.{sub}", "a string")
    if not whole(get("features.dim"), 1):
        bad("features.dim", "a whole number >= 1")
    if not whole(get("layout.feature_length"), 1):
        bad("layout.feature_length", "a whole number >= 1")
    if not number(get("threshold.value")) or get("threshold.value") < 0:
        bad("threshold.value", "a finite number >= 0")
    for field in ("hybridization.temperature_c", "simulator.temperature_c"):
        if get(field) is not None and not number(get(field)):
            bad(field, "a finite number (°C)")
    if get("features.metadata") is not None and not isinstance(get("features.metadata"), dict):
        bad("features.metadata", "an object")
    for field in ("features.metadata.weights_sha256", "features.metadata.extractor",
                  "features.metadata.weights"):
        if get(field) is not None and not isinstance(get(field), str):
            bad(field, "a string")
    ext = get("features.extractor")
    if ext is not None and not isinstance(ext, str):
        bad("features.extractor", "a string")
    kind = get("predictor.kind")
    if kind is not None and not isinstance(kind, str):
        bad("predictor.kind", "a string")


def hybridization_temperature(card: dict) -> float:
    """The protocol's hybridization temperature (°C, the anneal's end) that a model card names.

    ``hybridization.temperature_c``; cards written before the field hybridized at their training
    simulator's temperature (``simulator.temperature_c``, 21 °C when absent). A model trained
    with ``--train-temperature`` records the two apart.
    """
    h = card.get("hybridization") or {}
    if h.get("temperature_c") is not None:
        return float(h["temperature_c"])
    return float((card.get("simulator") or {}).get("temperature_c", TEMPERATURE_C))


def training_temperature(card: dict) -> float | None:
    """The temperature (°C) at which a model card's simulator trained the predictor
    (``hybridization.training_temperature_c``), or None where the card does not name one apart
    from its hybridization temperature (the paper's method trains where it hybridizes)."""
    t = (card.get("hybridization") or {}).get("training_temperature_c")
    try:
        t = float(t)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(t) or abs(t - hybridization_temperature(card)) < 1e-9:
        return None
    return t


def _mm(v: str) -> str:
    return ".".join(str(v).split(".")[:2])


class PrimoModel:
    """A loaded, validated model directory (use :func:`load_model`).

    Attributes
    ----------
    path : Path
    card : dict
    feature_dim : int
    threshold : float
    """

    def __init__(self, path, card: dict):
        self.path = Path(path)
        self.card = card
        self._encoder = None
        self._predictor = None

    def __repr__(self):
        return (f"PrimoModel({str(self.path)!r}, dim={self.feature_dim}, "
                f"extractor={self.extractor!r}, threshold={self.threshold:g})")

    @property
    def feature_dim(self) -> int:
        return int(self.card["features"]["dim"])

    @property
    def extractor(self):
        return self.card["features"].get("extractor")

    @property
    def threshold(self) -> float:
        return float(self.card["threshold"]["value"])

    @property
    def hybridization_c(self) -> float:
        """The hybridization temperature (°C) the model was trained for (:func:`hybridization_temperature`)."""
        return hybridization_temperature(self.card)

    @property
    def feature_length(self) -> int:
        return int(self.card["layout"]["feature_length"])

    @property
    def encoder(self):
        """The Keras encoder (loaded on first use, ``safe_mode=True``)."""
        if self._encoder is None:
            from .encoder.model import load_encoder

            self._encoder = load_keras_file(
                load_encoder, self.path / self.card["files"]["encoder"]["path"], "encoder")
        return self._encoder

    @property
    def predictor(self):
        """The Keras yield predictor (loaded on first use, ``safe_mode=True``)."""
        if self._predictor is None:
            from .predictor.model import load_predictor

            self._predictor = load_keras_file(
                load_predictor, self.path / self.card["files"]["predictor"]["path"], "predictor")
        return self._predictor

    def check_features(self, dim: int, metadata: dict | None = None, path=None) -> None:
        """Raise :class:`DataError` if features of ``dim`` (from ``metadata``'s extractor) do not fit."""
        extractor = (metadata or {}).get("extractor")
        if int(dim) != self.feature_dim:
            raise DataError(
                f"features are {int(dim)}-dimensional (extractor {extractor!r}) but the model "
                f"{self.path} expects {self.feature_dim}-dimensional features (extractor "
                f"{self.extractor!r})", path=path,
                hint=f"extract the features with {self.extractor!r}, or use a model trained on these features")
        if extractor and self.extractor and extractor != self.extractor:
            raise DataError(
                f"features come from extractor {extractor!r} but the model {self.path} was trained "
                f"on {self.extractor!r} features", path=path,
                hint=f"extract the features with {self.extractor!r}")
        from .features.extractors import extractor_mismatch

        trained = {**(self.card["features"].get("metadata") or {}), "extractor": self.extractor}
        diff = extractor_mismatch(metadata, trained)
        if diff:
            raise DataError(f"features and the model {self.path} come from different extractors "
                            f"({diff})", path=path,
                            hint="extract the features with the model's extractor, weights and "
                                 "preprocessing (its card.json, features.metadata)")

    def encode_onehot(self, X, batch_size: int = 4096) -> np.ndarray:
        """Feature vectors (N x D) -> soft one-hots (N x 80 x 4, float32)."""
        from .encoder import encode_onehot

        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise DataError(f"features must be a 2-D matrix, got shape {X.shape}")
        self.check_features(X.shape[1])
        return encode_onehot(self.encoder, X, batch_size=batch_size)

    def encode_features(self, X, batch_size: int = 4096) -> list[str]:
        """Feature vectors (N x D) -> 80-nt feature sequences (argmax per position)."""
        from .encoder import to_sequences

        return to_sequences(self.encode_onehot(X, batch_size=batch_size))

    def predict_yields(self, target_onehot, query_onehot, batch_size: int = 4096) -> np.ndarray:
        """Predicted yields of target + reverse complement of query (one-hots in the same sense)."""
        t = np.asarray(target_onehot, dtype=np.float32)
        q = np.asarray(query_onehot, dtype=np.float32)
        if t.shape != q.shape or t.ndim != 3 or t.shape[2] != 4:
            raise DataError(f"target and query one-hots must both be N x L x 4, got {t.shape} and {q.shape}")
        from .predictor.model import predictor_outputs

        out = [np.asarray(predictor_outputs(
            self.predictor([t[a:a + batch_size], q[a:a + batch_size]], training=False))[0])
               for a in range(0, len(t), batch_size)]
        return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)


def load_model(path) -> PrimoModel:
    """Open and validate a model directory (the Keras models themselves load lazily)."""
    card = read_card(path)
    return PrimoModel(path, card)
