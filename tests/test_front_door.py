"""``import primo``: the lazy front door, and the README's Python example run as it stands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import primo

README = Path(__file__).parent.parent / "README.md"


def test_import_primo_is_light():
    code = ("import sys, primo; primo.analyze; primo.TrainSettings.__name__; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'faiss') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_every_front_door_name_resolves_and_is_documented():
    for name in primo.__all__:
        obj = getattr(primo, name)
        if name != "__version__":
            assert (obj.__doc__ or "").strip(), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        primo.nope


def _readme_python():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Python API"):text.index("### The results page")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_python(), str(README) + ":Python API", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "100 documents, 64 dimensions"
    assert out[1].startswith("fmnist-test-00003 ") and len(out[1].split()[1]) == 80
    assert re.match(r"\d+ reads; \{'0\.1': ", out[2]) and int(out[2].split()[0]) > 0
    assert out[3] == "['chance', 'lsh', 'oracle']"
    for f in ("pool/twist_order.csv", "probes.csv", "sim/reads.fastq.gz", "result/counts.csv.gz",
              "result/thresholds.csv", "bench/benchmarks.csv"):
        assert (tmp_path / f).exists(), f
