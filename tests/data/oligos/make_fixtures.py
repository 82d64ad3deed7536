"""Regenerate the pool fixtures in this directory (run from the repository root).

The oligos are built here independently of primo.oligos, from DESIGN.md's facts: permutation
RandomState(42), base-64 digits least significant first, reedsolo RS(6,4) over GF(64) (prim 0x61,
generator 3, fcr 1), the A/T/C/G-ordered homopolymer-free codebook, and the FP/IP/RP primers.

    python tests/data/oligos/make_fixtures.py
"""

import gzip
import itertools
from pathlib import Path

import numpy as np
import reedsolo

HERE = Path(__file__).parent
FP, IP, RP = "GCCGACCAGTTTCCATAG", "AGCACTCAGTATTTGTCCG", "GTCCTCAACAACCTCCTG"
COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}


def codebook():
    words = ["".join(t) for t in itertools.product("ATCG", repeat=5)
             if all(t[i] != t[i + 1] for i in range(4)) and t[0] in "AC" and t[-1] in "GT"]
    return words[:64]


def barcode(index, perm, rs, cb):
    doc_id = int(perm[index])
    digits = bytearray((doc_id >> (6 * k)) & 63 for k in range(4))
    return "".join(cb[s] for s in rs.encode(digits))


def main():
    perm = np.random.RandomState(42).permutation(2**24 - 1)
    rs = reedsolo.RSCodec(nsym=2, nsize=6, c_exp=6, prim=0x61, generator=3, fcr=1)
    cb = codebook()
    rng = np.random.default_rng(7)
    indices = [0, 1, 2, 1600042, 17]
    rows = []
    for i in indices:
        feat = "".join(rng.choice(list("ACGT"), 80))
        rows.append((f"img_{i:07d}", FP + barcode(i, perm, rs, cb) + IP + feat + RP, feat))
    good = "ImageID,Sequence\n" + "".join(f"{a},{b}\n" for a, b, _ in rows)
    with gzip.GzipFile(HERE / "database_seqs.csv.gz", "wb", mtime=0) as fh:
        fh.write(good.encode())
    (HERE / "expected_indices.txt").write_text("".join(f"{i}\n" for i in indices))
    pairs = "ImageID,Features\n" + "".join(f"{a},{f}\n" for a, _, f in rows)
    (HERE / "pairs.csv").write_text(pairs)

    def variant(name, line, new):
        lines = good.splitlines()
        lines[line - 1] = new(lines[line - 1])
        (HERE / name).write_text("\n".join(lines) + "\n")

    def seq_edit(f):
        return lambda ln: ln.split(",")[0] + "," + f(ln.split(",")[1])

    # broken pool files: (file, line that is wrong)
    variant("bad_length.csv", 3, seq_edit(lambda s: s[:-1]))
    variant("bad_primer.csv", 4, seq_edit(lambda s: s[:150] + ("A" if s[150] != "A" else "C") + s[151:]))
    variant("bad_base.csv", 5, seq_edit(lambda s: s[:100] + "N" + s[101:]))
    # 5-mer AAAAA is not a codeword symbol
    variant("bad_barcode_word.csv", 2, seq_edit(lambda s: s[:18] + "AAAAA" + s[23:]))
    # a valid codebook word in a data position: every word is in the codebook, checks disagree
    variant("bad_barcode_check.csv", 6,
            seq_edit(lambda s: s[:18] + (cb[5] if s[18:23] != cb[5] else cb[6]) + s[23:]))
    # barcode of line 2 repeated on line 4
    lines = good.splitlines()
    l2 = lines[1].split(",")[1]
    variant("dup_barcode.csv", 4, seq_edit(lambda s: s[:18] + l2[18:48] + s[48:]))
    (HERE / "missing_column.csv").write_text(good.replace("Sequence", "Seq", 1))
    (HERE / "header_only.csv").write_text("ImageID,Sequence\n")

    # broken pairs files
    pl = pairs.splitlines()
    (HERE / "pairs_bad_base.csv").write_text(
        "\n".join(pl[:3] + [pl[3][:-5] + "ACXTA"] + pl[4:]) + "\n")
    (HERE / "pairs_short_feature.csv").write_text("\n".join(pl[:2] + [pl[2][:-3]] + pl[3:]) + "\n")
    (HERE / "pairs_dup_id.csv").write_text(
        "\n".join(pl[:5] + [pl[2].split(",")[0] + "," + pl[5].split(",")[1]]) + "\n")
    (HERE / "pairs_header_only.csv").write_text("ImageID,Features\n")
    (HERE / "pairs_empty.csv").write_text("")
    (HERE / "pairs_index_too_large.csv").write_text(
        "ImageID,Features,Index\n" + f"a,{rows[0][2]},5\n" + f"b,{rows[1][2]},16777215\n")


if __name__ == "__main__":
    main()
