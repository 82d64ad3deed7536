import csv
import gzip
import json

import h5py
import numpy as np
import pytest

from primo.features.store import FeatureStore, write_features
from primo.oligos.pool import read_pool


def test_encode_db_writes_a_pool_matching_the_encoder(tiny_workspace, tmp_path, run_cli):
    ws = tiny_workspace
    out = tmp_path / "pool"
    res, out_s, err = run_cli(["encode-db", "-m", ws.model, "-f", ws.features, "-o", out,
                               "--qc", "warn", "--chunk-rows", "7"])
    assert res.exit_code == 0, err
    pool = read_pool(out)
    with FeatureStore.open(ws.features) as st:
        ids, X = list(st.ids), st.read(0, st.n)
    assert list(pool.image_ids) == ids
    assert pool.indices.tolist() == list(range(len(ids)))
    from primo.model_dir import load_model

    expected = load_model(ws.model).encode_features(X)
    assert [str(f) for f in pool.features] == expected
    man = json.loads((out / "manifest.json").read_text())
    assert man["model"]["card_checksum"] and man["features"]["n"] == len(ids)
    assert "encode-db" in man["provenance"]["command"]


def test_encode_db_qc_fail_writes_nothing(tiny_workspace, tmp_path, run_cli):
    out = tmp_path / "pool"
    # an impossible GC window makes every oligo fail
    res, _, err = run_cli(["encode-db", "-m", tiny_workspace.model, "-f", tiny_workspace.features,
                           "-o", out, "--qc", "fail", "--gc-max", "0.3"])
    assert res.exit_code == 1
    assert err.count("\n") == 1 and "--qc warn" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_encode_db_rejects_features_of_another_dimension(tiny_workspace, tmp_path, run_cli):
    bad = tmp_path / "bad.h5"
    write_features(bad, ["a", "b"], np.ones((2, 7), np.float32), {"extractor": "pixels"})
    res, _, err = run_cli(["encode-db", "-m", tiny_workspace.model, "-f", bad, "-o", tmp_path / "p"])
    assert res.exit_code == 1
    assert "7-dimensional" in err and "64-dimensional" in err and err.count("\n") == 1
    assert not (tmp_path / "p").exists()


def test_encode_db_empty_store(tiny_workspace, tmp_path, run_cli):
    empty = tmp_path / "empty.h5"
    with FeatureStore.create(empty, 64, {"extractor": "fashion-embed"}):
        pass
    res, _, err = run_cli(["encode-db", "-m", tiny_workspace.model, "-f", empty, "-o", tmp_path / "p"])
    assert res.exit_code == 1 and "no documents" in err


def test_encode_db_tampered_model(tiny_workspace, tmp_path, run_cli):
    import shutil

    m = tmp_path / "model"
    shutil.copytree(tiny_workspace.model, m)
    card = json.loads((m / "card.json").read_text())
    card["threshold"]["value"] = 123.0
    (m / "card.json").write_text(json.dumps(card))
    res, _, err = run_cli(["encode-db", "-m", m, "-f", tiny_workspace.features, "-o", tmp_path / "p"])
    assert res.exit_code == 1 and "card" in err and err.count("\n") == 1


def test_query_from_features_and_from_image_agree(tiny_workspace, tmp_path, run_cli):
    ws = tiny_workspace
    img = ws.images[5]
    qid = img.stem
    res, out1, err = run_cli(["query", "-m", ws.model, "-f", ws.features, "--query-id", qid,
                              "-o", tmp_path / "a.csv"])
    assert res.exit_code == 0, err
    res, out2, err = run_cli(["query", "-m", ws.model, "-i", img, "-o", tmp_path / "b.csv"])
    assert res.exit_code == 0, err
    assert out1.split() == out2.split()
    rows = list(csv.DictReader(open(tmp_path / "a.csv")))
    assert rows[0]["ImageID"] == qid
    seq = rows[0]["Sequence"]
    feature = out1.split()[1]
    from primo.dna import revcomp

    assert seq == "/5Biosg/UUUUUUUTT" + revcomp(feature + "GTCCTC")
    idt = list(csv.DictReader(open(tmp_path / "a_idt_order.csv")))
    assert idt[0]["Sequence"].startswith("/5Biosg//ideoxyU/")
    man = json.loads((tmp_path / "a_manifest.json").read_text())
    assert man["feature_regions"][qid] == feature


def test_query_writes_the_hybridization_it_was_measured_under(tiny_workspace, tmp_path, run_cli):
    """The lab gets the thermocycler program primo simulate runs by default for the model."""
    from primo.model_dir import load_model, training_temperature
    from primo.simulation.capture import Protocol
    from primo.workflows.query import lab_protocol

    ws = tiny_workspace
    res, _, err = run_cli(["query", "-m", ws.model, "-f", ws.features, "-o", tmp_path / "q.csv"])
    assert res.exit_code == 0, err
    hyb = json.loads((tmp_path / "q_manifest.json").read_text())["hybridization_protocol"]
    assert "hybridize as simulated" in err and hyb["text"] in err
    model = load_model(ws.model)
    p = Protocol.from_options("kinetic", hybridization_c=model.hybridization_c,
                              training_c=training_temperature(model.card))
    assert hyb["program"] == (p.ramp_program or "uniform")
    steps = hyb["steps"]
    # the steps cover the ramp hold by hold, from its start to the hybridization temperature
    assert steps[0]["from_c"] == p.anneal_from and steps[-1]["to_c"] == hyb["hybridization_c"]
    for a, b in zip(steps, steps[1:]):
        assert b["from_c"] == a["to_c"] - a["step_c"]
        assert b["minutes_per_step"] != a["minutes_per_step"]
    holds = sum((s["from_c"] - s["to_c"]) / s["step_c"] + 1 for s in steps)
    assert holds == len(p.ramp())
    minutes = sum(((s["from_c"] - s["to_c"]) / s["step_c"] + 1) * s["minutes_per_step"]
                  for s in steps)
    assert abs(minutes / 60 - hyb["ramp_hours"]) < 1e-9
    assert hyb["washes"] == p.washes and hyb["probe_nm"] == p.probe_nm
    # a card trained at 80 °C and hybridized at 21 °C: the auto program, 70 % of 25 h above 75
    card = {**model.card, "hybridization": {"temperature_c": 21.0, "training_temperature_c": 80.0}}
    model.card = card
    hyb = lab_protocol(model)
    assert hyb["program"] == "95-76:52.5,75-21:8.18182" and abs(hyb["ramp_hours"] - 25.0) < 1e-5
    assert [(s["from_c"], s["to_c"], s["minutes_per_step"]) for s in hyb["steps"]] == \
        [(95.0, 76.0, 52.5), (75.0, 21.0, 8.18182)]
    # the paper's card trains where it hybridizes: the uniform ramp, one step
    model.card = {**card, "hybridization": {"temperature_c": 21.0, "training_temperature_c": 21.0}}
    hyb = lab_protocol(model)
    assert hyb["program"] == "uniform" and len(hyb["steps"]) == 1
    assert hyb["steps"][0]["minutes_per_step"] == 20.0 and hyb["ramp_hours"] == 25.0


def test_query_needs_exactly_one_source(tiny_workspace, tmp_path, run_cli):
    res, _, err = run_cli(["query", "-m", tiny_workspace.model, "-o", tmp_path / "q.csv"])
    assert res.exit_code == 2 and "--features" in err
    res, _, err = run_cli(["query", "-m", tiny_workspace.model, "-f", tiny_workspace.features,
                           "--query-id", "nope", "-o", tmp_path / "q.csv"])
    assert res.exit_code == 1 and "nope" in err
    assert not (tmp_path / "q.csv").exists()
