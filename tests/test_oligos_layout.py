import numpy as np
import pytest

from primo import constants as C
from primo.errors import DataError, UsageError
from primo.oligos import OligoLayout, ProbeLayout, check_primers, primer_tm, to_idt_notation

PUBLISHED_BARCODE = "CTGATAGTAGATCATAGATGACACGATGAT"


def _rc(s):  # independent of primo.dna
    return "".join({"A": "T", "C": "G", "G": "C", "T": "A"}[c] for c in reversed(s))


def _rand(rng, n):
    return "".join(rng.choice(list("ACGT"), n))


def test_default_layout_is_the_published_one():
    lay = OligoLayout()
    assert lay.length == 165
    assert (lay.fp, lay.ip, lay.rp) == (C.FP, C.IP, C.RP)
    assert lay.barcode_slice == slice(18, 48)
    assert lay.ip_slice == slice(48, 67)
    assert lay.feature_slice == slice(67, 147)
    assert lay.rp_slice == slice(147, 165)
    assert lay.primers["PCR reverse (RP*)"] == _rc(C.RP)
    assert lay.primers["linear amplification (IP*)"] == _rc(C.IP)


def test_oligo_and_split_round_trip():
    rng = np.random.default_rng(3)
    lay = OligoLayout()
    for _ in range(20):
        bc, ft = _rand(rng, 30), _rand(rng, 80)
        o = lay.oligo(bc, ft)
        assert o == C.FP + bc + C.IP + ft + C.RP
        assert lay.split(o) == (bc, ft)
        assert lay.split(o.lower()) == (bc, ft)


def test_vectorised_oligos_match_single():
    rng = np.random.default_rng(4)
    lay = OligoLayout()
    bcs = [_rand(rng, 30) for _ in range(50)]
    fts = [_rand(rng, 80) for _ in range(50)]
    assert lay.oligos(bcs, fts) == [lay.oligo(b, f) for b, f in zip(bcs, fts)]
    # barcodes as an S array, as BarcodeScheme.encode_bytes gives them
    sarr = np.array([b.encode() for b in bcs], dtype="S30")
    assert lay.oligos(sarr, fts) == lay.oligos(bcs, fts)


def test_oligo_rejects_bad_parts():
    lay = OligoLayout()
    with pytest.raises(DataError, match="feature sequence .* has 79 nt, expected 80"):
        lay.oligo(PUBLISHED_BARCODE, "A" * 79)
    with pytest.raises(DataError, match="unknown base"):
        lay.oligo(PUBLISHED_BARCODE, "A" * 79 + "N")
    with pytest.raises(DataError, match="barcode"):
        lay.oligo("ACGT", "A" * 80)
    with pytest.raises(DataError, match="record 1"):
        lay.oligos([PUBLISHED_BARCODE] * 2, ["A" * 80, "A" * 81])


@pytest.mark.parametrize("mutate,msg", [
    (lambda o: o[:-1], "164 nt, expected 165"),
    (lambda o: "T" + o[1:], "FP is TCCGACCAGTTTCCATAG, expected GCCGACCAGTTTCCATAG"),
    (lambda o: o[:50] + "T" + o[51:], "IP is "),
    (lambda o: o[:-1] + "A", "RP is "),
    (lambda o: o[:100] + "N" + o[101:], "unknown base"),
])
def test_split_names_what_is_wrong(mutate, msg):
    lay = OligoLayout()
    o = lay.oligo(PUBLISHED_BARCODE, "ACGT" * 20)
    with pytest.raises(DataError) as e:
        lay.split(mutate(o), path="pool.csv", line=7)
    s = str(e.value)
    assert msg in s and "pool.csv, line 7" in s and "\n" not in s


def test_layout_dict_round_trip_and_custom_primers():
    lay = OligoLayout(fp="ACGTTGCAAGCTAGCTAGG", feature_length=60)
    d = lay.to_dict()
    assert d["length"] == lay.length == 19 + 30 + 19 + 60 + 18
    assert OligoLayout.from_dict(d) == lay
    assert OligoLayout.from_dict(None) == OligoLayout()
    with pytest.raises(DataError, match="length"):
        OligoLayout.from_dict({**d, "length": 200})


@pytest.mark.parametrize("primers,msg", [
    ({"FP": "GCCGACCAGTTNCCATAG"}, "unknown base"),
    ({"FP": "GCCGACCAG"}, "9 nt, expected 15..40"),
    ({"FP": "GCGCGCGGCCGCGCGGCG"}, "GC fraction"),
    ({"FP": "ATATATTAAATATTATAT"}, "GC fraction"),
    ({"FP": "GCCGACCAAAAAACATAG"}, "homopolymer"),
    ({"FP": "GCCGACCAGTTTCCATAG", "RP": "GCCGACCAGTTTCCATAG"}, "same sequence"),
    ({"FP": "GCCGACCAGTTTCCATAG", "RP": "TTGCCGACCAGTTTCCATAGC"}, "occurs inside primer"),
    ({"FP": "GCCGACCAGTTTCCATAG", "RP": "AGCTATGGAAACTGGTCGGCA"}, "occurs inside primer"),
    ({"FP": "ATCAGTACATTGACT"}, "Tm 37.7 degC"),
    ({"FP": "GCCGACCAGTTTCCATAGCCAGCTAGC", "RP": "GTCCTCAACAACCTCCTG"}, "differ by"),
])
def test_primer_validation(primers, msg):
    with pytest.raises(UsageError, match=msg):
        check_primers(primers)


def test_bad_primer_in_layout_is_usage_error():
    with pytest.raises(UsageError, match="primer IP"):
        OligoLayout(ip="ACGU" * 5)


@pytest.mark.parametrize("seq,tm", [
    # reference values: Biopython MeltingTemp.Tm_NN(seq, nn_table=DNA_NN3, dnac1=125, dnac2=125,
    # Na=50, saltcorr=5), i.e. SantaLucia 1998 at 250 nM total strand, 50 mM Na+
    (C.FP, 51.91), (C.IP, 51.55), (C.RP, 51.27), ("ATCAGTACATTGACT", 37.66),
    ("GCGCATATCGCGATAT", 48.69),
])
def test_primer_tm_matches_reference(seq, tm):
    assert primer_tm(seq) == pytest.approx(tm, abs=0.01)


def test_primer_tm_orders_by_gc():
    assert primer_tm("GCGCGCGCGCGCGCGCGC") > primer_tm("ATATATATATATATATAT") + 30


def test_probe_is_reverse_complement_of_features_plus_toehold():
    rng = np.random.default_rng(5)
    p = ProbeLayout()
    for _ in range(10):
        f = _rand(rng, 80)
        dna = p.dna(f)
        assert dna == _rc(f + "GTCCTC")
        assert len(dna) == 86
        assert p.probe(f) == "/5Biosg/UUUUUUUTT" + dna
        assert p.feature_of(p.probe(f)) == f
    assert p.idt_sequence("A" * 80) == "/5Biosg/" + "/ideoxyU/" * 7 + "TT" + _rc("A" * 80 + "GTCCTC")


def test_probe_layout_errors_and_dict():
    p = ProbeLayout()
    with pytest.raises(DataError, match="has 81 nt, expected 80"):
        p.probe("A" * 81)
    with pytest.raises(DataError, match="does not start with"):
        p.feature_of("ACGT" * 20)
    with pytest.raises(UsageError, match="toehold"):
        ProbeLayout(toehold=30)
    with pytest.raises(UsageError, match="prefix"):
        ProbeLayout(prefix="/5Biosg/XX")
    assert ProbeLayout.from_dict(p.to_dict()) == p
    q = ProbeLayout(toehold=4)
    assert q.dna("A" * 80) == _rc("A" * 80 + "GTCC")


def test_idt_notation():
    assert to_idt_notation("/5Biosg/UUTT") == "/5Biosg//ideoxyU//ideoxyU/TT"
    assert to_idt_notation("ACGT") == "ACGT"
