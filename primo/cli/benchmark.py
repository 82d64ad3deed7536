"""``primo benchmark``: primo against in-silico similarity search (candidate set vs recall)."""

from __future__ import annotations

import json
import warnings

import click

from ..benchmark.core import benchmark_stores   # no TensorFlow; the options' defaults are its own
from ._options import (chunk_rows_option, debug_option, mapper_from_options, neighbors_option,
                       overwrite_option, parallel_options, seed_option, skip_bad_rows_option)
from ._settings import library_default

PEER_HELP = ("Comma-separated peers: hnsw, hnsw-sq, faiss-ivf, faiss-ivfpq, annoy, lsh, mrpt "
             "(default: all); 'none' for primo and the exact neighbors only.")


def _parse_peer_options(values):
    """``--peer-option faiss-ivf.nlist=256`` -> ``{"faiss-ivf": {"nlist": 256}}``."""
    from ..errors import UsageError

    out: dict = {}
    for v in values:
        if "=" not in v or "." not in v.split("=", 1)[0]:
            raise UsageError(f"--peer-option {v!r} is not PEER.OPTION=VALUE",
                             hint="e.g. --peer-option faiss-ivf.nlist=256 or annoy.n_trees=20")
        key, val = v.split("=", 1)
        peer, opt = key.split(".", 1)
        try:
            parsed = json.loads(val)
        except ValueError:
            parsed = val
        if isinstance(parsed, str) and "," in parsed:
            try:
                parsed = [json.loads(x) for x in parsed.split(",")]
            except ValueError:
                raise UsageError(f"--peer-option {v!r}: {val!r} is not a list of numbers",
                                 hint="e.g. --peer-option hnsw.ef_search=100,200,400") from None
        out.setdefault(peer, {})[opt] = parsed
    return out


@click.command("benchmark")
@click.option("--features", "-f", required=True, type=click.Path(dir_okay=False),
              help="Database feature store (HDF5, from `primo extract`).")
@click.option("--queries", "-Q", required=True, type=click.Path(dir_okay=False),
              help="Query feature store (same extractor).")
@click.option("--output", "-o", "out", required=True, type=click.Path(file_okay=False),
              help="Output directory: benchmarks.csv, benchmarks.png, summary.json.")
@neighbors_option(library_default(benchmark_stores, "k"),
                  help="Nearest neighbors that define recall.")
@click.option("--peers", default=None, help=PEER_HELP)
@click.option("--peer-option", "peer_option", multiple=True, metavar="PEER.OPTION=VALUE",
              help="Index/search option of a peer, repeatable (e.g. faiss-ivf.nlist=256, "
                   "hnsw.ef_search=100,200,400, lsh.n_tables=1,8).")
@click.option("--counts-dir", type=click.Path(file_okay=False), default=None,
              help="primo curve from read counts / yields: DIR/<query id>.csv[.gz] "
                   "(ImageID,Count) per query.")
@click.option("--ranking", type=click.Choice(["counts", "enrichment"]),
              default=library_default(benchmark_stores, "ranking"), show_default=True,
              help="With --counts-dir: rank by read count, or by enrichment over the input "
                   "library (DIR/<query id>/enrichment.csv.gz of primo simulate --input-library).")
@click.option("--primo-curve", type=click.Path(dir_okay=False), default=None,
              help="primo curve from a CSV in the benchmarks layout (Query ID, Number Retrieved, "
                   "Nearest Neighbor Recall, Algorithm Parameters).")
@seed_option(library_default(benchmark_stores, "seed"), help="Random seed of the peers' indexes.")
@click.option("--threads", type=click.IntRange(1, 4096), default=None,
              help="Threads for faiss / annoy index building (default: all).")
@chunk_rows_option(None, "Database rows", help="Database rows per chunk for the exact neighbors "
                                                "(default: ~64 MB).")
@click.option("--title", default=None, help="Plot title.")
@parallel_options
@overwrite_option("benchmark", output="out",
                  inputs=("features", "queries", "counts_dir", "primo_curve"))
@skip_bad_rows_option("benchmark")
@debug_option
def cli(features, queries, out, k, peers, peer_option, counts_dir, ranking, primo_curve, seed,
        threads, chunksize, title, processes, scheduler):
    """Candidate-set size vs k-NN recall for primo and in-silico ANN peers (the paper's Fig. 4).

    \b
    Writes OUT/benchmarks.csv (published layout), OUT/benchmarks.png and OUT/summary.json
    (the proportion of the database each algorithm scans for 50% and 90% mean recall).
    """
    options = _parse_peer_options(peer_option)
    with mapper_from_options(processes, scheduler) as mapper:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = benchmark_stores(features, queries, out, k=k, peers=peers,
                                       peer_options=options, counts_dir=counts_dir,
                                       primo_curve=primo_curve, seed=seed, threads=threads,
                                       chunksize=chunksize, mapper=mapper, title=title,
                                       ranking=ranking)
    for w in caught:
        click.echo(f"primo benchmark: warning: {' '.join(str(w.message).split())}", err=True)
    click.echo(f"{'algorithm':<12} {'best recall':>11} {'prop@50%':>10} {'prop@90%':>10}")
    for alg, d in summary["algorithms"].items():
        p = d.get("proportion_at_recall", {})
        best = d.get("best_mean_recall")
        fmt = lambda v: "-" if v is None else f"{v:.3g}"  # noqa: E731
        click.echo(f"{alg:<12} {fmt(best):>11} {fmt(p.get('0.5')):>10} {fmt(p.get('0.9')):>10}")
    click.echo(f"wrote {out}/benchmarks.csv, benchmarks.png, summary.json", err=True)
    return summary
