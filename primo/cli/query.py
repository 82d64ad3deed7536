"""``primo query --model MODEL/ (--image IMG... | --features Q.h5) -o probes.csv``: query probes.

Writes probes.csv (ImageID,Sequence: the published query_seqs.csv layout, with the 5' biotin and
deoxy-U spacer), probes_idt_order.csv (IDT sheet) and probes_manifest.json beside it (with the
hybridization program the model's figures were measured under).
"""

from __future__ import annotations

import click

from ..workflows.query import design_probes   # no TensorFlow; the options' defaults are its own
from ._options import debug_option, model_dir_option, overwrite_option, skip_bad_rows_option
from ._settings import library_default

__all__ = ["cli"]


def _probe_paths(out):
    from ..oligos.probes import probe_paths

    return probe_paths(out)


@click.command("query")
@model_dir_option
@click.option("--image", "-i", "images", multiple=True, type=click.Path(),
              help="Query image (repeatable; folders and list files work too). Features are "
                   "extracted with the extractor recorded in the model card.")
@click.option("--features", "-f", type=click.Path(), default=None,
              help="Feature store of the queries instead of images.")
@click.option("--query-id", "query_ids", multiple=True,
              help="With --features: only these queries (repeatable; default all).")
@click.option("--weights", default=None,
              help="Extractor weights for --image (default: as recorded in the model card).")
@click.option("--ids", type=click.Choice(["stem", "path"]),
              default=library_default(design_probes, "ids"), show_default=True,
              help="Query IDs of images: file stem or relative path.")
@click.option("--output", "-o", required=True, type=click.Path(), help="probes.csv to write.")
@click.option("--scale", default=None, help="IDT synthesis scale (default: smallest that fits).")
@click.option("--purification", default=library_default(design_probes, "purification"),
              show_default=True, help="IDT purification.")
@overwrite_option("query", file=True, inputs=("model_dir", "images", "features", "weights"),
                  sidecars=lambda out: list(_probe_paths(out).values())[1:])
@skip_bad_rows_option("query")
@debug_option
def cli(model_dir, images, features, query_ids, weights, ids, output, scale, purification):
    """Design query probes and their IDT order sheet."""
    res = design_probes(model_dir, output, features=features, images=list(images),
                        query_ids=list(query_ids) or None, weights=weights, ids=ids, scale=scale,
                        purification=purification)
    for q, s in zip(res.query_ids, res.features):
        click.echo(f"{q}\t{s}")
    click.echo(f"wrote {len(res.query_ids)} probe(s) to {res.paths['probes']}", err=True)
    click.echo(f"hybridize as simulated: {res.protocol['text']} (in {res.paths['manifest'].name})",
               err=True)
    return res
