"""Free energies kept on disk, so that a second run under the same physics computes none twice.

``primo simulate`` spends nearly all of its time in the backend's partition functions (ViennaRNA's
``pf_dimer``: a profile of one Fashion-MNIST query on 60,000 documents under the kinetic capture
put 249 of its 255 s there). Runs that change only what happens after the energies (the capture
model, ``k_on``, the washes, the wet lab, the sequencing depth) need exactly the same free
energies again. An :class:`EnergyStore` (``primo simulate --energy-cache FILE``) keeps every
strand's monomer and homodimer free energy and every pair's heterodimer free energy that a
:class:`primo.thermo.simulator.Simulator` computes, and hands them back to later runs.

What makes a stored value valid
-------------------------------
Every value lives under a *namespace*: the SHA-256 of the backend's name and version, the
conditions it was computed at (temperature, Na+, dangles, duplex initiation, G·T pairs, loop
enthalpies, stacks, the seeded perturbation: everything the backend's functions receive) and the
source code of the backend module itself (``primo/thermo/vienna.py`` or ``nupack.py``), so that a
change of physics or of the code computing it can never return an old number. Within a namespace a
value is keyed by the full strand sequences (feature region and primer), so a different primer or
toehold is a different key. Values are IEEE doubles stored as they came from the backend: a run
from the store gives the same numbers, bit for bit, as one without it (tested).

The file
--------
One SQLite database (Python's standard library; no pickle), marked with its own application id so
that primo refuses to write into a file it did not create. A new file is created under a temporary
name and renamed once its tables exist; after that every batch of values is one transaction, so an
interrupted run leaves a valid store holding what was committed. Only the process that calls
:meth:`Simulator.free_energies` reads and writes it (the parallel map's workers compute, they never
touch the file). The file grows by ~0.3 kB a value: one query on 60,000 documents under the
kinetic capture stores ~5,000.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
from pathlib import Path

from ..errors import DataError, UsageError

__all__ = ["EnergyStore", "APPLICATION_ID", "FORMAT"]

#: SQLite's ``application_id`` of a primo energy store ("prEn")
APPLICATION_ID = 0x7072456E
#: ``user_version`` of the layout below; another value is refused
FORMAT = 1
#: keys per SELECT (SQLite's default limit of bound parameters is 999 or more)
_BATCH = 500
_SCHEMA = ("CREATE TABLE energies (namespace TEXT NOT NULL, key TEXT NOT NULL, "
           "g0 REAL, g1 REAL, PRIMARY KEY (namespace, key)) WITHOUT ROWID",
           "CREATE TABLE namespaces (namespace TEXT PRIMARY KEY, description TEXT NOT NULL)")


def _header(path: Path) -> tuple[bytes, int, int] | None:
    """(magic, application_id, user_version) from an SQLite file's header; None if too short."""
    with open(path, "rb") as f:
        head = f.read(100)
    if len(head) < 100:
        return None
    return head[:16], int.from_bytes(head[68:72], "big"), int.from_bytes(head[60:64], "big")


def _float(v) -> float:
    return math.nan if v is None else float(v)


class EnergyStore:
    """A file of free energies (see the module docstring), shared by the simulators that hold it.

    ``path`` is created when it does not exist (its folder must); an existing file must be a
    store primo wrote, else :class:`DataError`. ``hits`` and ``computed`` count the values this
    object returned from the file and stored into it.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.hits = 0
        self.computed = 0
        self._con = None
        self._known: set = set()
        if self.path.exists():
            self._check_existing()
        else:
            self._create()

    # ---------------------------------------------------------------- the file

    def _check_existing(self):
        p = self.path
        fix = "give a new file name (primo creates it) or a store primo simulate wrote"
        if p.is_dir():
            raise UsageError(f"{p} is a folder, not an energy store file", hint=fix,
                             option="energy_cache")
        try:
            head = _header(p)
        except OSError as e:
            raise DataError(f"cannot read the energy store: {e.strerror or e}", path=p) from None
        if head is None or head[0] != b"SQLite format 3\x00" or head[1] != APPLICATION_ID:
            raise DataError("not a primo energy store; primo does not write into files it did "
                            "not create", path=p, hint=fix)
        if head[2] != FORMAT:
            raise DataError(f"energy store format {head[2]}, this primo reads format {FORMAT}",
                            path=p, hint="give a new file name")

    def _create(self):
        p = self.path
        if not p.parent.is_dir():
            raise UsageError(f"the folder of {p} does not exist", option="energy_cache",
                             hint="create it first or give another path")
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        try:
            con = sqlite3.connect(str(tmp))
            with con:
                for statement in _SCHEMA:
                    con.execute(statement)
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute(f"PRAGMA user_version = {FORMAT}")
            con.close()
            if p.exists():   # another process created it meanwhile: use theirs
                tmp.unlink()
                self._check_existing()
            else:
                os.replace(tmp, p)
        except sqlite3.Error as e:
            tmp.unlink(missing_ok=True)
            raise DataError(f"cannot create the energy store: {e}", path=p) from None

    def _connection(self) -> sqlite3.Connection:
        if self._con is None:
            self._con = sqlite3.connect(str(self.path), timeout=300)
        return self._con

    def close(self):
        if self._con is not None:
            self._con.close()
            self._con = None

    def __getstate__(self):   # a copy in another process opens the file itself
        return {"path": self.path, "hits": self.hits, "computed": self.computed}

    def __setstate__(self, state):
        self.__dict__.update(state, _con=None, _known=set())

    # ---------------------------------------------------------------- values

    @staticmethod
    def namespace(description: dict) -> str:
        """The namespace of a physics: the SHA-256 of its canonical JSON description."""
        text = json.dumps(description, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, namespace: str, keys) -> dict:
        """``{key: (g0, g1)}`` for the ``keys`` stored under ``namespace`` (missing ones left out;
        a stored NULL reads as NaN)."""
        keys = list(dict.fromkeys(keys))
        found = {}
        if not keys:
            return found
        con = self._connection()
        try:
            for i in range(0, len(keys), _BATCH):
                part = keys[i:i + _BATCH]
                rows = con.execute(
                    "SELECT key, g0, g1 FROM energies WHERE namespace = ? AND key IN "
                    f"({','.join('?' * len(part))})", [namespace, *part]).fetchall()
                for k, g0, g1 in rows:
                    found[k] = (_float(g0), _float(g1))
        except sqlite3.Error as e:
            raise DataError(f"cannot read the energy store: {e}", path=self.path) from None
        self.hits += len(found)
        return found

    def put(self, namespace: str, values: dict, description: dict | None = None):
        """Store ``{key: (g0, g1)}`` under ``namespace`` in one transaction (NaN as NULL);
        ``description`` is recorded once per namespace, for whoever inspects the file."""
        if not values:
            return
        rows = [(namespace, k, None if math.isnan(g0) else float(g0),
                 None if math.isnan(g1) else float(g1)) for k, (g0, g1) in values.items()]
        con = self._connection()
        try:
            with con:
                if description is not None and namespace not in self._known:
                    con.execute("INSERT OR IGNORE INTO namespaces VALUES (?, ?)",
                                (namespace, json.dumps(description, sort_keys=True)))
                    self._known.add(namespace)
                con.executemany("INSERT OR REPLACE INTO energies VALUES (?, ?, ?, ?)", rows)
        except sqlite3.Error as e:
            raise DataError(f"cannot write the energy store: {e}", path=self.path,
                            hint="check the disk and that no other program holds the file") from None
        self.computed += len(rows)

    def __len__(self):
        return int(self._connection().execute("SELECT COUNT(*) FROM energies").fetchone()[0])

    def report(self) -> dict:
        """What ``summary.json`` records: the file and this run's hits and stored values."""
        return {"path": str(self.path), "values_reused": self.hits,
                "values_computed": self.computed}

    def __repr__(self):
        return f"EnergyStore({str(self.path)!r})"
