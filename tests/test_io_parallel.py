import gzip
import os

import numpy as np
import pytest

from primo.errors import DataError
from primo.io import atomic_dir, atomic_file, open_input, open_output, read_csv_rows
from primo.parallel import SerialMapper, get_mapper


def _square(x):
    return x * x


def test_atomic_file_keeps_old_on_error(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    d = tmp_path / "OUT"
    with atomic_dir(d) as t:
        (t / "a").write_text("1")
    with pytest.raises(ValueError):
        with atomic_dir(d) as t:
            (t / "a").write_text("2")
            raise ValueError
    assert (d / "a").read_text() == "1"
    with atomic_dir(d) as t:
        (t / "b").write_text("3")
    assert sorted(os.listdir(d)) == [".primo-output.json", "b"]
    assert sorted(os.listdir(tmp_path)) == ["OUT"]


def test_gzip_detected_by_content_and_truncation_reported(tmp_path):
    p = tmp_path / "x.csv"  # gzip despite the name
    with open_output(tmp_path / "x.csv.gz") as fh:
        fh.write("a,b\n" + "1,2\n" * 10000)
    os.replace(tmp_path / "x.csv.gz", p)
    assert open_input(p).read().count("\n") == 10001
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        list(read_csv_rows(p, ["a", "b"]))


def test_csv_missing_column_and_empty(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    with pytest.raises(DataError, match="empty"):
        list(read_csv_rows(p, ["a"]))
    p.write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match="lacks column"):
        list(read_csv_rows(p, ["a"]))


@pytest.mark.parametrize("processes", [1, 2])
def test_mappers_keep_order(processes):
    with get_mapper(processes=processes) as m:
        assert list(m.imap(_square, range(20))) == [i * i for i in range(20)]
    assert isinstance(get_mapper(processes=1), SerialMapper)


def test_the_broken_pool_race_of_python_311_prints_nothing(monkeypatch):
    """A killed pool's manager thread raising InvalidStateError on a cancelled future is silenced;
    any other thread exception still reaches the hook that was there before."""
    import threading
    from concurrent.futures import InvalidStateError, process

    from primo.parallel import _quiet_broken_pool_race

    seen = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_type))
    _quiet_broken_pool_race()
    manager = process._ExecutorManagerThread.__new__(process._ExecutorManagerThread)
    threading.excepthook(threading.ExceptHookArgs([InvalidStateError, InvalidStateError("x"),
                                                   None, manager]))
    assert seen == []
    threading.excepthook(threading.ExceptHookArgs([ValueError, ValueError("y"), None,
                                                   threading.Thread(name="other")]))
    threading.excepthook(threading.ExceptHookArgs([InvalidStateError, InvalidStateError("z"),
                                                   None, threading.Thread(name="other")]))
    assert seen == [ValueError, InvalidStateError]
