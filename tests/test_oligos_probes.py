import csv
import json

import numpy as np
import pytest

from primo.errors import DataError, UsageError
from primo.oligos import ProbeLayout, write_probes
from primo.oligos.probes import idt_scale_for, probe_paths


def _rc(s):
    return "".join({"A": "T", "C": "G", "G": "C", "T": "A"}[c] for c in reversed(s))


def _feats(n, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), 80)) for _ in range(n)]


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_query_seqs_and_idt_sheet(tmp_path):
    feats = _feats(3)
    ids = ["q1", "query two", "q/3"]
    paths = write_probes(ids, feats, tmp_path / "query_seqs.csv")
    assert paths == probe_paths(tmp_path / "query_seqs.csv")
    rows = _read(tmp_path / "query_seqs.csv")
    assert rows[0] == ["ImageID", "Sequence"]
    for (qid, seq), q, f in zip(rows[1:], ids, feats):
        assert qid == q
        assert seq == "/5Biosg/UUUUUUUTT" + _rc(f + "GTCCTC")
    idt = _read(tmp_path / "query_seqs_idt_order.csv")
    assert idt[0] == ["Name", "Sequence", "Scale", "Purification"]
    assert [r[0] for r in idt[1:]] == ["primo_q_q1", "primo_q_query_two", "primo_q_q_3"]
    assert idt[1][1] == "/5Biosg/" + "/ideoxyU/" * 7 + "TT" + _rc(feats[0] + "GTCCTC")
    assert {r[2] for r in idt[1:]} == {"250nm"}  # 95 nt: beyond 100nm's 90-nt limit
    assert {r[3] for r in idt[1:]} == {"HPLC"}
    m = json.loads((tmp_path / "query_seqs_manifest.json").read_text())
    assert m["queries"] == 3 and m["order"]["bases_per_probe"] == 95
    assert m["probe_layout"] == ProbeLayout().to_dict()
    assert "primo_version" in m["provenance"]


def test_scale_choice():
    assert idt_scale_for(50) == "25nm"
    assert idt_scale_for(86) == "100nm"
    assert idt_scale_for(95) == "250nm"
    with pytest.raises(UsageError, match="beyond IDT's standard"):
        idt_scale_for(150)


def test_short_probe_and_explicit_scale(tmp_path):
    lay = ProbeLayout(feature_length=60, toehold=6, prefix="/5Biosg/TT")
    write_probes(["a"], ["ACGT" * 15], tmp_path / "p.csv", layout=lay, scale="100nm",
                 purification="page")
    idt = _read(tmp_path / "p_idt_order.csv")
    assert idt[1][2:] == ["100nm", "PAGE"]
    assert idt[1][1] == "/5Biosg/TT" + _rc("ACGT" * 15 + "GTCCTC")


@pytest.mark.parametrize("kw,err,msg", [
    ({"scale": "100nm"}, UsageError, "takes 10-90 nt but the probe has 95 nt"),
    ({"scale": "5kg"}, UsageError, "unknown IDT scale"),
    ({"purification": "gold"}, UsageError, "unknown IDT purification"),
])
def test_bad_order_options(tmp_path, kw, err, msg):
    with pytest.raises(err, match=msg):
        write_probes(["a"], _feats(1), tmp_path / "p.csv", **kw)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ids,feats,msg", [
    (["a", "b"], ["ACGT" * 20, "ACGT" * 19 + "ACGN"], "record 1: query feature sequence .* unknown base"),
    (["a", "b"], ["ACGT" * 20, "ACGT" * 21], "record 1: query feature sequence .* has 84 nt, expected 80"),
    (["a", "a"], ["ACGT" * 20, "ACGT" * 20], "record 1: duplicate query ImageID 'a'"),
    (["a/1", "a:1"], ["ACGT" * 20, "ACGT" * 20], "same IDT name"),
    (["", "b"], ["ACGT" * 20, "ACGT" * 20], "record 0: query ImageID is empty"),
    ([], [], "no queries"),
])
def test_bad_queries_write_nothing(tmp_path, ids, feats, msg):
    with pytest.raises(DataError, match=msg) as e:
        write_probes(ids, feats, tmp_path / "p.csv")
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_outputs_get_normal_permissions(tmp_path):
    import os

    paths = write_probes(["a"], _feats(1), tmp_path / "p.csv")
    mask = os.umask(0o022)
    os.umask(mask)
    for p in paths.values():
        assert (p.stat().st_mode & 0o777) == (0o666 & ~mask)
