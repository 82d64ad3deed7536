"""``primo extract``: images -> feature store (``.h5``).

Three sources, one per run:

* ``primo extract IMAGES... -o F.h5``: image files, folders (recursive) and list files;
* ``primo extract --fashion-mnist train|test -o F.h5``: the Fashion-MNIST IDX files, with labels;
* ``primo extract --synthetic N -o F.h5``: FC2-like synthetic features, with cluster labels.
"""

from __future__ import annotations

import click

# no TensorFlow in either (the networks load when a run starts): the options' defaults are theirs
from ..features.datasets import FASHION_MNIST_DIR
from ..features.extract import extract_images
from ..features.synthetic import SyntheticFC2
from ._options import (FiniteFloatRange, debug_option, mapper_from_options, parallel_options,
                       seed_option)
from ._settings import library_default

MODEL_HELP = ("Feature extractor: vgg16 (FC2, 4096-d; default), resnet50 (2048-d), mobilenet_v3_large "
              "(960-d), efficientnet_b0 (1280-d) (Keras applications, ImageNet weights), "
              "hub:PATH|HANDLE (a TF-Hub image feature-vector module: SavedModel folder, .tar.gz, or "
              "a https:// handle in the TF-Hub cache), fashion-embed (bundled 64-d Fashion-MNIST "
              "embedding), pixels[:SIZE[:rgb]] (raw pixels). See --list-models.")


def _list_models(ctx, _param, value):
    if not value or ctx.resilient_parsing:
        return
    from ..features.extractors import format_model_list

    click.echo(format_model_list())
    ctx.exit(0)


@click.command(name="extract")
@click.argument("images", nargs=-1, type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Feature store to write (HDF5).")
@click.option("--model", "-m", default=library_default(extract_images, "model"), show_default=True,
              help=MODEL_HELP)
@click.option("--weights", default=None, metavar="PATH|imagenet|none",
              help="Keras applications: weights file (default: imagenet from the Keras cache, "
                   "e.g. ~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels.h5); 'none' = "
                   "random weights, for testing only. fashion-embed: another trained .npz.")
@click.option("--list-models", is_flag=True, expose_value=False, is_eager=True,
              callback=_list_models, help="List the models and whether their weights are here.")
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=None,
              help="Images per forward pass (default: 32 for vgg16/hub, more for small models).")
@click.option("--ids", type=click.Choice(["stem", "path"]),
              default=library_default(extract_images, "ids"), show_default=True,
              help="Document IDs: file name without extension, or path relative to the folder given.")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run / add images not yet in an existing store.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store (once the new one is done).")
@click.option("--resize", type=click.Choice(["bilinear", "nearest", "bicubic", "lanczos"]),
              default=library_default(extract_images, "resample"), show_default=True,
              help="Resize filter (nearest = like Keras load_img).")
@click.option("--input-size", type=click.IntRange(min=8), default=None,
              help="hub: input side when the module does not fix it; resnet50, mobilenet_v3_large, "
                   "efficientnet_b0: input side (default 224).")
@click.option("--input-range", type=click.Choice(["0-1", "0-255", "-1-1"]), default=None,
              help="hub: pixel value range the module expects (TF-Hub convention: 0-1).")
@click.option("--invert", is_flag=True,
              help="fashion-embed: invert grayscale (dark objects on light backgrounds).")
@click.option("--fashion-mnist", "fmnist", type=click.Choice(["train", "test"]), default=None,
              help="Extract a Fashion-MNIST split from its IDX files (IDs fmnist-<split>-NNNNN, labels).")
@click.option("--dir", "fmnist_dir", type=click.Path(file_okay=False, path_type=str), default=None,
              help=f"Folder with the Fashion-MNIST IDX files (default {FASHION_MNIST_DIR}).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="--fashion-mnist: only the first N images.")
@click.option("--synthetic", type=click.IntRange(1, 10**10), default=None, metavar="N",
              help="Write N synthetic FC2-like vectors instead (for scale tests).")
@click.option("--similar-share", type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
              default=library_default(SyntheticFC2, "similar_share"), show_default=True,
              help="--synthetic: share of pairs within Euclidean distance --threshold.")
@click.option("--threshold", type=FiniteFloatRange(0, 1e6, min_open=True),
              default=library_default(SyntheticFC2, "threshold"), show_default=True,
              help="--synthetic: the similarity threshold (75 for FC2).")
@click.option("--clusters", type=click.IntRange(1, 10**6), default=None,
              help="--synthetic: number of clusters (default N/100, 2 to 2000).")
@click.option("--dim", type=click.IntRange(2, 10**6), default=library_default(SyntheticFC2, "dim"),
              show_default=True,
              help="--synthetic: dimension.")
@seed_option(library_default(SyntheticFC2, "seed"), help="--synthetic: random seed.")
@parallel_options(processes_help="Image-decoding worker processes (default: 1, decoding in this "
                                 "process; the network always uses all CPUs).")
@debug_option
def cli(images, output, model, weights, batch_size, ids, resume, overwrite, resize, input_size,
        input_range, invert, fmnist, fmnist_dir, limit, synthetic, similar_share, threshold, clusters,
        dim, seed, processes, scheduler):
    """Extract feature vectors into a feature store.

    \b
    primo extract photos/ -o features.h5                     # VGG16-FC2, ImageNet weights
    primo extract photos/ more.txt -o f.h5 --resume          # add new images, continue a run
    primo extract photos/ -o r.h5 --model resnet50           # 2048-d, average pooled
    primo extract q.jpg -o q.h5 --model hub:/models/mobilenet_v3_feature_vector
    primo extract --list-models                              # which weights are present
    primo extract --fashion-mnist test --model fashion-embed -o fm_test.h5
    primo extract --synthetic 1000000 -o syn.h5              # FC2-like, for scale tests

    Unreadable images are skipped with a warning and listed in the store. A run that is
    interrupted leaves OUTPUT.partial; run again with --resume to continue it. Images are
    decoded in this process unless --processes N (N > 1) asks for decoding workers; the
    network itself always uses all CPUs through TensorFlow.
    """
    from ..errors import UsageError
    from ..io import check_output_file

    # the store is never written over one of its inputs, --overwrite or not
    check_output_file(output, inputs=[*images, None if weights in (None, "imagenet", "none")
                                      else weights])
    sources = sum([bool(images), fmnist is not None, synthetic is not None])
    if sources == 0:
        raise UsageError("nothing to extract", hint="give IMAGES..., --fashion-mnist SPLIT or --synthetic N")
    if sources > 1:
        raise UsageError("give only one of IMAGES..., --fashion-mnist and --synthetic")
    if synthetic is not None:
        from ..features.synthetic import write_synthetic

        if resume:
            raise UsageError("--resume does not apply to --synthetic (it is written in one go)")
        with mapper_from_options(processes, scheduler) as mapper:
            p = write_synthetic(output, synthetic, mapper=mapper, overwrite=overwrite,
                                similar_share=similar_share, threshold=threshold, n_clusters=clusters,
                                dim=dim, seed=seed)
        click.echo(f"wrote {synthetic} synthetic {dim}-d vectors to {output} ({p['n_clusters']} "
                   f"clusters, scale {p['scale']:.4g}, {p['seconds']:.1f} s)", err=True)
        return p
    if fmnist is not None:
        from ..features.extract import extract_fashion_mnist

        res = extract_fashion_mnist(fmnist, output, model, directory=fmnist_dir, limit=limit,
                                    weights=weights, batch_size=batch_size, resume=resume,
                                    overwrite=overwrite, resample=resize)
        click.echo(res.summary(), err=True)
        return res
    with mapper_from_options(1 if processes is None else processes, scheduler) as mapper:
        res = extract_images(list(images), output, model, weights=weights, batch_size=batch_size,
                             ids=ids, resume=resume, overwrite=overwrite, resample=resize,
                             mapper=mapper if mapper.n_workers > 1 or scheduler else None,
                             input_size=input_size, input_range=input_range, invert=invert)
    click.echo(res.summary(), err=True)
    return res
