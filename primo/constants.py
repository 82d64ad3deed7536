"""Fixed facts of the published primo method (DESIGN.md, papers 001/002), in one place.

Everything that can differ between pools (primers, lengths, barcode parameters) is a parameter of the
layout or scheme objects that use these defaults, and is recorded in pool manifests and model cards.
"""

#: forward primer, 5' end of every database oligo
FP = "GCCGACCAGTTTCCATAG"
#: internal primer, between barcode and feature region
IP = "AGCACTCAGTATTTGTCCG"
#: reverse primer, 3' end of every database oligo
RP = "GTCCTCAACAACCTCCTG"

FEATURE_LENGTH = 80
BARCODE_LENGTH = 30
OLIGO_LENGTH = len(FP) + BARCODE_LENGTH + len(IP) + FEATURE_LENGTH + len(RP)  # 165

#: bases of RP appended to the query features as a hybridization toehold
TOEHOLD = 6
#: IDT notation: 5' biotin, then a deoxy-U spacer (cut by USER enzyme) and TT
PROBE_PREFIX = "/5Biosg/UUUUUUUTT"

#: random bases before the oligo in each sequencing read (added for NextSeq diversity)
READ_RANDOM_PREFIX = 25

#: simulation defaults (DESIGN.md "Simulation")
TEMPERATURE_C = 21.0
#: start of the hybridization protocol's anneal (°C; the authors' 95 °C denaturation)
ANNEAL_FROM_C = 95.0
STRAND_CONC_M = 1e-9
#: Na+ of the hybridization buffer (mol/L), where none is given
NA_MOLAR = 1.0

#: VGG16-FC2 similarity threshold (Euclidean distance)
FC2_SIMILARITY_THRESHOLD = 75.0

#: the yield predictors a model card may name (``predictor.kind``; ``primo train --predictor``);
#: the first is the paper's local-match network
PREDICTORS = ("local-match", "scan")

assert OLIGO_LENGTH == 165
