import gzip

import dnaio
import numpy as np
import pytest

from primo.simulation.wetlab import WetLabModel, reads_from_counts, simulate_counts, write_reads
from primo.barcodes import BarcodeScheme
from primo.constants import FP, IP, READ_RANDOM_PREFIX, RP
from primo.dna import revcomp


def _oligos(n, seed=0):
    rng = np.random.default_rng(seed)
    bc = BarcodeScheme().encode(np.arange(n))
    return np.array([FP + b + IP + "".join(rng.choice(list("ACGT"), 80)) + RP for b in bc])


def test_counts_follow_yields_and_depth():
    y = np.zeros(5000)
    y[:50] = 0.95
    y[50:500] = 0.2
    model = WetLabModel(depth=200_000)
    c = simulate_counts(y, model, rng=1)
    assert c.sum() == 200_000 and c.dtype == np.int64
    assert c[:50].mean() > 3 * c[50:500].mean() > 3 * c[500:].mean()
    # same seed, same counts
    assert (simulate_counts(y, model, rng=1) == c).all()
    assert not (simulate_counts(y, model, rng=2) == c).all()


def test_background_only_gives_near_uniform_counts():
    c = simulate_counts(np.zeros(1000), WetLabModel(depth=100_000, sigma_synthesis=0, sigma_pcr=0),
                        rng=0)
    assert abs(c.mean() - 100) < 1e-9 and c.std() < 20


def test_bad_parameters():
    with pytest.raises(ValueError):
        WetLabModel(capture_efficiency=0)
    with pytest.raises(ValueError):
        WetLabModel(sigma_pcr=-1)


def test_reads_have_the_published_structure(tmp_path):
    ol = _oligos(20)
    counts = np.full(20, 30)
    model = WetLabModel(error_start=0, error_end=0, n_rate=0, read_length=150)
    n_fwd = n_rev = 0
    for names, seqs, quals, docs, rev in reads_from_counts(counts, ol, model, rng=0):
        for s, q, d, r in zip(seqs, quals, docs, rev):
            assert len(s) == len(q) == 150
            if r:
                assert s == revcomp(ol[d])[:150]
                n_rev += 1
            else:
                assert s[READ_RANDOM_PREFIX:] == ol[d][: 150 - READ_RANDOM_PREFIX]
                n_fwd += 1
    assert n_fwd + n_rev == 600 and 200 < n_fwd < 400


def test_write_reads_gzip_and_errors(tmp_path):
    ol = _oligos(10)
    p = tmp_path / "r.fastq.gz"
    n = write_reads(p, np.full(10, 100), ol, WetLabModel(error_start=0.01, error_end=0.01), rng=3)
    assert n == 1000
    with open(p, "rb") as fh:
        assert fh.read(2) == b"\x1f\x8b"
    mism = total = 0
    with dnaio.open(p) as reads:
        for rec in reads:
            doc = int(rec.name.split("doc=")[1].split()[0])
            truth = revcomp(ol[doc])[:150] if rec.name.endswith("rev") else None
            if truth is not None:
                mism += sum(a != b for a, b in zip(rec.sequence, truth))
                total += 150
    assert 0.005 < mism / total < 0.02


def test_input_library_measures_the_pool_and_enrichment_removes_its_spread():
    """One pool for every query; its input library divides the synthesis/PCR spread out of the
    ranking, so documents of equal yield rank together and binders rank above weaker binders."""
    from primo.evaluation.recall import enrichment_scores
    from primo.simulation.wetlab import pool_abundance, simulate_input_counts

    n = 20_000
    model = WetLabModel(sigma_synthesis=0.6)
    a = pool_abundance(n, model, rng=3)
    assert a.shape == (n,) and (a > 0).all()
    assert np.std(np.log(a)) == pytest.approx(np.hypot(0.6, 0.15 * np.sqrt(2)), rel=0.05)
    u = simulate_input_counts(a, model, rng=4, reads_per_document=40)
    assert u.sum() == 40 * n and u.dtype == np.int64
    # the input library follows the pool's abundance
    assert np.corrcoef(np.log(a), np.log(u + 0.5))[0, 1] > 0.8
    # strong binders (yield 1) and weaker ones (0.4); rank them by counts and by enrichment
    y = np.zeros(n)
    y[:300] = 1.0
    y[300:900] = 0.4
    c = simulate_counts(y, model, rng=5, abundance=a)
    e = enrichment_scores(c, u)

    def strong_in_top(score):
        return np.isin(np.argsort(-score, kind="stable")[:300], np.arange(300)).mean()

    assert strong_in_top(e) > strong_in_top(c.astype(float)) + 0.1
    assert strong_in_top(e) > 0.75  # (0.97 with the true abundances; the input is sampled)
    # same pool for two queries: the same abundance, not a new draw
    c2 = simulate_counts(y, model, rng=6, abundance=a)
    assert np.corrcoef(c[:300], c2[:300])[0, 1] > 0.5
    with pytest.raises(ValueError):
        simulate_counts(y, model, rng=5, abundance=a[:10])
    with pytest.raises(ValueError):
        simulate_input_counts(a, model, rng=4, reads_per_document=0)


def test_wet_lab_settings_are_checked_in_library_terms_and_generate_the_options():
    """Every number of the wet-lab step is bounded and finite (UsageError naming the setting);
    primo simulate's options for them (and the protocol's) come from the settings, with no
    default of their own."""
    import dataclasses
    import math

    from primo.cli.simulate import cli
    from primo.errors import UsageError
    from primo.settings import cli_fields, field_kind
    from primo.simulation.capture import Protocol

    for f in dataclasses.fields(WetLabModel):
        if field_kind(f) in ("int", "float"):
            for bad in (math.nan, math.inf, -1e15):
                with pytest.raises(UsageError) as e:
                    WetLabModel(**{f.name: bad})
                assert e.value.option == f.name and "--" not in str(e.value)
    params = {p.name: p for p in cli.params}
    fields = cli_fields(WetLabModel) + cli_fields(Protocol)
    assert len(fields) >= 18
    for f, meta in fields:
        assert params[f.name].default is None and params[f.name].help == meta["help"]
