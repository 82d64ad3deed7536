"""``primo simulate --model MODEL/ --features F.h5 --queries Q.h5 -o OUT/``: the experiment in silico.

For each query: yields of its probe against every database document (the predictor for all, the
thermodynamic simulator for the top ``--refine`` candidates, the k nearest documents and a random
``--sample`` of the rest, whose yields stand in for the documents not simulated), then the wet-lab
step (synthesis spread, PCR bias, bead capture with a non-specific background, sequencing depth)
-> read counts, thresholds.csv / recall.png against the query's true nearest neighbors, and on request NextSeq-like
reads (``--reads``) that ``primo analyze`` reads back.
"""

from __future__ import annotations

import dataclasses

import click

from ..simulation.capture import Protocol as _Protocol
from ..simulation.wetlab import WetLabModel as _WetLabModel
from ..workflows.experiment import ExperimentConfig as _ExperimentConfig
from ..settings import cli_fields
from ._settings import FiniteFloatRange, given_settings, renamed_option, settings_options
from ._options import (SEED, chunk_rows_option, database_features_option, debug_option,
                       loop_enthalpies_option, mapper_from_options, model_dir_option, neighbors_option,
                       overwrite_option, parallel_options, queries_option, seed_option,
                       skip_bad_rows_option, stacks_option)

__all__ = ["cli"]

#: the protocol's and the wet lab's options, generated from their settings
#: (:class:`primo.simulation.capture.Protocol`, :class:`primo.simulation.wetlab.WetLabModel`)
_PROTOCOL_FIELDS = cli_fields(_Protocol)
_WETLAB_FIELDS = cli_fields(_WetLabModel)
#: the experiment's own options (:class:`primo.workflows.experiment.ExperimentConfig`); k, the
#: seed and the chunk size use the shared vocabulary's decorators with its defaults
_EXPERIMENT_FIELDS = cli_fields(_ExperimentConfig)
_EXPERIMENT = _ExperimentConfig()
_FIELDS = {f.name: f.metadata for f in dataclasses.fields(_ExperimentConfig)}
_k_help, _seed_help = _FIELDS["k"]["help"], _FIELDS["seed"]["help"]


class _ProbeNM(click.ParamType):
    """A probe concentration in nM (> 0), or ``auto`` (sized to the database: see
    :func:`primo.simulation.capture.auto_probe_nm`)."""

    name = "NM|auto"

    def convert(self, value, param, ctx):
        import math

        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a concentration in nM nor 'auto'", param, ctx)
        if not (math.isfinite(v) and v > 0):
            self.fail(f"{value!r} is not a positive concentration in nM", param, ctx)
        return v


@click.command("simulate")
@model_dir_option
@database_features_option()
@queries_option("queries", required=True)
@click.option("--query-id", "query_ids", multiple=True,
              help="Only these queries (repeatable; default: every vector of -Q/--queries).")
@click.option("--pool", type=click.Path(), default=None,
              help="The pool encode-db made from --features (its sequences and barcodes are used; "
                   "default: encode --features now).")
@click.option("--output", "-o", required=True, type=click.Path(), help="Output directory.")
@settings_options(_EXPERIMENT_FIELDS)
@renamed_option("--no-neighbours", "--no-neighbors", "neighbors", is_flag=True, flag_value=False)
@click.option("--no-neighbors", "neighbors", is_flag=True, flag_value=False, default=None,
              help="Do not simulate the k nearest documents unless they are refined or sampled.")
@click.option("--backend", default=None,
              help="Simulator backend for --refine (default: the model's, i.e. its training).")
@loop_enthalpies_option(None, help="ViennaRNA's DNA loop enthalpies (default: the model card's; "
                        "cards written before the option say shipped): clipped caps them so that "
                        "binding weakens with temperature, which the anneal's upper temperatures "
                        "need; shipped is the file as ViennaRNA ships it.")
@stacks_option(None, help="ViennaRNA's DNA Watson-Crick stacks (default: the model card's; cards "
               "written before the option say vienna): vienna (the file's) or santalucia "
               "(SantaLucia & Hicks 2004, as NUPACK's dna04).")
@click.option("--perturb", type=FiniteFloatRange(0.0, 5.0), default=None, metavar="SIGMA",
              help="Perturb every nearest-neighbor free energy of the simulator by seeded "
                   "Gaussian noise of SIGMA kcal/mol (e.g. 0.3): a physics the model was not "
                   "trained on, as a model of the parameters' uncertainty; recorded in "
                   "summary.json.")
@click.option("--perturb-seed", type=SEED, default=0, show_default=True,
              help="Seed of the --perturb draw (the same seed is the same parameter set).")
@click.option("--energy-cache", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Keep the free energies in FILE (created if missing; a file primo wrote "
                   "otherwise) and reuse those an earlier run under the same physics computed: "
                   "the same numbers, so runs that change only the capture, k_on, the washes or "
                   "the wet lab take minutes. Recorded in summary.json.")
@neighbors_option(_EXPERIMENT.k, help=_k_help)
@click.option("--labels", type=click.Path(), default=None,
              help="ImageID,Label file (documents and queries): adds mAP@k.")
@settings_options(_WETLAB_FIELDS)
@seed_option(_EXPERIMENT.seed, help=_seed_help)
@chunk_rows_option(_EXPERIMENT.chunksize, "Documents (feature-store rows)")
@settings_options(_PROTOCOL_FIELDS, types={"probe_nm": _ProbeNM()})
@click.option("--images", "images_dir", type=click.Path(exists=True, file_okay=False),
              default=None,
              help="report.html: folder of the documents' pictures, named <ImageID>.<ext> "
                   "(default: the image files the feature stores record).")
@parallel_options
@overwrite_option("simulate", inputs=("model_dir", "features", "queries", "pool", "labels"))
@skip_bad_rows_option("simulate")
@debug_option
def cli(model_dir, features, queries, query_ids, pool, output, neighbors, backend,
        loop_enthalpies, stacks, perturb, perturb_seed, energy_cache, k, labels, seed, chunksize,
        images_dir, processes, scheduler, **values):
    """The wet-lab experiment in silico."""
    from .. import api
    from ..simulation.capture import Protocol

    ctx = click.get_current_context()
    given = given_settings(ctx, _PROTOCOL_FIELDS, values)
    experiment = given_settings(ctx, _EXPERIMENT_FIELDS, values)
    if neighbors is not None:
        experiment["neighbours"] = neighbors
    capture = experiment.get("capture", _EXPERIMENT.capture)
    # checked before anything is loaded: a bad protocol is a usage error
    # (the ramp's end is the model card's, unknown here: the coldest end allowed stands in, so
    # that a ramp program is checked against the ramp's start only until the card is read)
    ramp_end = {} if capture == "independent" else \
        {"anneal_to": Protocol.__dataclass_fields__["anneal_to"].metadata["lo"]}
    Protocol.from_options(capture, **{**ramp_end, **given})
    lab = None
    if labels:
        from ..evaluation.recall import read_labels

        lab = read_labels(labels)
    with mapper_from_options(processes, scheduler) as mapper:
        result = api.simulate(
            model_dir, features, queries, output, pool=pool, query_ids=list(query_ids) or None,
            mapper=mapper, labels=lab, progress=True, protocol=given, backend=backend,
            loop_enthalpies=loop_enthalpies, stacks=stacks,
            perturb=None if not perturb else (perturb, perturb_seed), energy_cache=energy_cache,
            warn=lambda m: click.echo(f"primo simulate: warning: {m}", err=True),
            wetlab=given_settings(ctx, _WETLAB_FIELDS, values),
            k=k, chunksize=chunksize, seed=seed, images=images_dir, **experiment)
    summary = result.summary
    for q in summary["queries"]:
        par = q.get("proportion_at_recall") or {}
        fig = ", ".join(f"{float(key):.0%} recall at {v:.3%}" for key, v in par.items()
                        if v is not None)
        click.echo(f"{q['query_id']}: {q['total_reads']:,} reads; {fig}")
        enr = (q.get("enrichment") or {}).get("proportion_at_recall") or {}
        if enr:
            fig = ", ".join(f"{float(key):.0%} at {v:.3%}" for key, v in enr.items() if v is not None)
            click.echo(f"  ranked by enrichment over the input library: {fig}")
        cap = q.get("capture")
        if cap:
            click.echo(f"  capture ({cap['capture_model']}): probe on simulated documents "
                       f"{cap['probe_bound_simulated']:.1%}, on imputed "
                       f"{cap['probe_bound_imputed']:.1%}"
                       + (f", on decoys {cap['probe_bound_decoys']:.1%}" if cap['decoy_strands']
                          else "") + f", free {cap['probe_free']:.1%}; "
                       f"{cap['documents_captured_half']:,} documents captured >= 50 %")
        if q.get("sampled"):
            click.echo(f"  {q['sampled_above_0.5']:.1%} of {q['sampled']:,} documents sampled "
                       f"outside the refined set bind at yield >= 0.5 (predictor: "
                       f"{q['sampled_predicted_above_0.5']:.1%}): ~"
                       f"{q['estimated_binders_outside_refined']:,} such documents in the database")
    click.echo(f"wrote {output} in {summary['timing']['total_seconds']:.1f} s", err=True)
    return summary
