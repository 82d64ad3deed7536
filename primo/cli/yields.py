"""``primo yields PAIRS.csv -o YIELDS.csv``: thermodynamic yields of feature sequence pairs.

PAIRS.csv (plain or gzip) has columns ``target_features`` and ``query_features`` (feature
sequences in the same sense, as the encoder writes them); YIELDS.csv gets the same columns plus
``duplex_yield``, and YIELDS.csv.json records the settings, versions and command. No TensorFlow.
"""

from __future__ import annotations

import click

from .. import constants as C
from ..thermo.simulator import Simulator, simulate_csv   # no TensorFlow; the defaults are theirs
from ._options import (chunk_rows_option, debug_option, loop_enthalpies_option,
                       mapper_from_options, overwrite_option, parallel_options, renamed_option,
                       stacks_option)
from ._settings import library_default

__all__ = ["cli"]


@click.command("yields")
@click.argument("pairs", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(dir_okay=False),
              help="Output CSV (gzip if it ends in .gz); a JSON sidecar OUT.json is written too.")
@click.option("--backend", default=library_default(Simulator, "backend"), show_default=True,
              help="Free-energy engine: vienna (ViennaRNA, DNA parameters), nupack (NUPACK 4, if "
                   "installed) or auto (nupack when available).")
@click.option("--temperature", type=float, default=library_default(Simulator, "temperature"),
              show_default=True,
              help="Temperature at which the simulator computes the equilibrium yields (°C).")
@loop_enthalpies_option(library_default(Simulator, "loop_enthalpies"))
@stacks_option(library_default(Simulator, "stacks"))
@click.option("--target-conc", type=float, default=library_default(Simulator, "target_conc"),
              show_default=True,
              help="Target strand concentration (mol/L; at most 1).")
@click.option("--query-conc", type=float, default=library_default(Simulator, "query_conc"),
              show_default=True,
              help="Query (probe) strand concentration (mol/L; at most 1).")
# the Simulator's na_molar=None is this constant
@click.option("--na-molar", "na_molar", type=click.FloatRange(0, 5, min_open=True),
              default=C.NA_MOLAR, show_default=True, help="Na+ (mol/L).")
@renamed_option("--sodium", "--na-molar", "na_molar", type=click.FloatRange(0, 5, min_open=True))
@click.option("--primer", default=library_default(Simulator, "primer"), show_default=True,
              help="Reverse primer appended to targets (its first --toehold nt follow the query).")
@click.option("--toehold", type=click.IntRange(min=0),
              default=library_default(Simulator, "toehold"), show_default=True,
              help="Primer bases on the probe.")
@click.option("--feature-length", "feature_length", type=click.IntRange(min=0),
              default=library_default(Simulator, "feature_length"), show_default=True,
              help="Feature sequence length (nt); 0 accepts any length if target and query match.")
@renamed_option("--length", "--feature-length", "feature_length", type=click.IntRange(min=0))
@click.option("--task-rows", "chunksize", type=click.IntRange(min=1),
              default=library_default(simulate_csv, "chunksize"), show_default=True,
              help="Pairs (rows) per parallel task.")
@renamed_option("--chunksize", "--task-rows", "chunksize", type=click.IntRange(min=1))
@chunk_rows_option(library_default(simulate_csv, "chunk_rows"), "Rows read and written",
                   name="chunk_rows", old="--rows")
@click.option("--energies", is_flag=True,
              help="Also write binding_dG: the binding free energy G_AB - G_A - G_B (kcal/mol, "
                   "1 M standard state) at --temperature, which keeps ordering pairs whose "
                   "yields have all saturated.")
@parallel_options
@overwrite_option("yields", output="out", file=True, inputs=("pairs",),
                  sidecars=lambda out: [str(out) + ".json"])
@debug_option
def cli(pairs, out, backend, temperature, loop_enthalpies, stacks, target_conc, query_conc,
        na_molar, primer, toehold, feature_length, chunksize, chunk_rows, energies, processes,
        scheduler):
    """Simulate hybridization yields of (target, query) feature sequence pairs.

    Target strand = target + primer, probe = reverse complement of (query + primer[:toehold]);
    complexes of up to two strands at equilibrium; yield = [target.probe] / min(concentration).
    """
    sim = Simulator(backend=backend, temperature=temperature, target_conc=target_conc,
                    query_conc=query_conc, primer=primer.strip().upper(), toehold=toehold,
                    na_molar=na_molar, feature_length=feature_length or None,
                    loop_enthalpies=loop_enthalpies, stacks=stacks)
    with mapper_from_options(processes, scheduler) as mapper:
        summary = simulate_csv(pairs, out, sim, mapper=mapper, chunk_rows=chunk_rows,
                               chunksize=chunksize, progress=True, energies=energies)
    click.echo(f"wrote {summary['pairs']:,} yields to {out} (mean {summary['mean_yield']:.4f}, "
               f"{summary['pairs_above_half']:,} above 0.5; {summary['seconds']:.1f} s, "
               f"{summary['mapper']})", err=True)
    return summary
