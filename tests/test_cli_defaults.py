"""Option defaults are written once, in the library (issue 28): every option of ``benchmark``,
``encode-db``, ``query``, ``extract``, ``yields``, ``pool`` and ``barcodes`` whose default is also
the default of the library function it feeds shows that function's default, and an option with a
default of its own is listed here as one the command line alone has, so a new literal default
in a command is noticed."""

from __future__ import annotations

import re

import click
import pytest

from primo import constants as C
from primo.barcodes import BarcodeDecoder, BarcodeScheme
from primo.barcodes.stream import decode_lines, encode_lines
from primo.benchmark.core import benchmark_stores
from primo.cli import LazyGroup
from primo.cli._settings import library_default
from primo.features.datasets import FASHION_MNIST_DIR
from primo.features.extract import extract_images
from primo.features.synthetic import SyntheticFC2
from primo.oligos.layout import OligoLayout
from primo.oligos.pool_build import build_pool_from_csv
from primo.oligos.pool_check import check_pool
from primo.thermo.simulator import Simulator, simulate_csv
from primo.workflows.encode_db import encode_database
from primo.workflows.query import design_probes

# (command, option parameter) -> (library callable, its parameter)
FROM_LIBRARY = {
    ("benchmark", "k"): (benchmark_stores, "k"),
    ("benchmark", "ranking"): (benchmark_stores, "ranking"),
    ("benchmark", "seed"): (benchmark_stores, "seed"),
    ("encode-db", "barcode_seed"): (BarcodeScheme, "seed"),
    ("encode-db", "name_prefix"): (encode_database, "name_prefix"),
    ("encode-db", "chunksize"): (encode_database, "chunksize"),
    ("encode-db", "batch_size"): (encode_database, "batch_size"),
    ("query", "ids"): (design_probes, "ids"),
    ("query", "purification"): (design_probes, "purification"),
    ("extract", "model"): (extract_images, "model"),
    ("extract", "ids"): (extract_images, "ids"),
    ("extract", "resize"): (extract_images, "resample"),
    ("extract", "similar_share"): (SyntheticFC2, "similar_share"),
    ("extract", "threshold"): (SyntheticFC2, "threshold"),
    ("extract", "dim"): (SyntheticFC2, "dim"),
    ("extract", "seed"): (SyntheticFC2, "seed"),
    ("yields", "backend"): (Simulator, "backend"),
    ("yields", "temperature"): (Simulator, "temperature"),
    ("yields", "loop_enthalpies"): (Simulator, "loop_enthalpies"),
    ("yields", "stacks"): (Simulator, "stacks"),
    ("yields", "target_conc"): (Simulator, "target_conc"),
    ("yields", "query_conc"): (Simulator, "query_conc"),
    ("yields", "primer"): (Simulator, "primer"),
    ("yields", "toehold"): (Simulator, "toehold"),
    ("yields", "feature_length"): (Simulator, "feature_length"),
    ("yields", "chunksize"): (simulate_csv, "chunksize"),
    ("yields", "chunk_rows"): (simulate_csv, "chunk_rows"),
    ("pool build", "id_column"): (build_pool_from_csv, "id_column"),
    ("pool build", "fp"): (OligoLayout, "fp"),
    ("pool build", "ip"): (OligoLayout, "ip"),
    ("pool build", "rp"): (OligoLayout, "rp"),
    ("pool build", "feature_length"): (OligoLayout, "feature_length"),
    ("pool build", "barcode_seed"): (BarcodeScheme, "seed"),
    ("pool build", "name_prefix"): (build_pool_from_csv, "name_prefix"),
    ("pool build", "chunksize"): (build_pool_from_csv, "chunksize"),
    ("pool check", "chunksize"): (check_pool, "chunksize"),
    ("barcodes encode", "chunksize"): (encode_lines, "chunksize"),
    ("barcodes decode", "chunksize"): (decode_lines, "chunksize"),
}

# defaults the command line alone has (no library parameter holds them)
CLI_ONLY = {
    # --qc fail: every command that writes a pool to order refuses a failing one
    # (``pool build``'s library default is "warn"); the shared vocabulary's
    ("encode-db", "qc"), ("pool build", "qc"),
    # the input of a pipe: stdin
    ("barcodes encode", "input_path"), ("barcodes decode", "input_path"),
}

COMMANDS = ("benchmark", "encode-db", "query", "extract", "yields", "pool", "barcodes")


def _commands():
    for name in COMMANDS:
        top = LazyGroup(name="primo").get_command(click.Context(click.Group("primo")), name)
        assert top is not None, name
        subs = getattr(top, "commands", None)
        if subs:
            for sub_name, sub in subs.items():
                yield f"{name} {sub_name}", sub
        else:
            yield name, top


def _options():
    return {(path, p.name): (cmd, p) for path, cmd in _commands() for p in cmd.params}


def _default(cmd, p):
    """The option's default, None where it has none (click >= 8.3 says UNSET)."""
    v = p.get_default(click.Context(cmd), call=True)
    return None if type(v).__name__ == "Sentinel" else v


@pytest.mark.parametrize("key", sorted(FROM_LIBRARY), ids=lambda k: f"{k[0]}:{k[1]}")
def test_option_default_is_the_librarys(key):
    cmd, p = _options()[key]
    func, name = FROM_LIBRARY[key]
    want = library_default(func, name)
    assert _default(cmd, p) == want, key
    if p.hidden:
        return
    # and --help shows it
    _, text = p.get_help_record(click.Context(cmd))
    assert re.search(rf"\[default: {re.escape(str(want))}[;\]]", text), (key, want, text)


def test_no_other_option_has_a_literal_default():
    """An option with a default is either the library's (FROM_LIBRARY) or the command line's own
    (CLI_ONLY); a new one is added to one of them (or defaults to None and is passed on only when
    given)."""
    extra = sorted(key for key, (cmd, p) in _options().items()
                   if not p.required and not getattr(p, "is_flag", False) and not p.multiple
                   and p.nargs != -1
                   and _default(cmd, p) is not None
                   and key not in FROM_LIBRARY and key not in CLI_ONLY
                   and key != ("yields", "na_molar"))
    assert not extra, f"options with a default not taken from the library: {extra}"


def test_yields_sodium_is_the_simulators():
    """``Simulator(na_molar=None)`` (None: so that the deprecated ``sodium=`` can be told apart)
    takes :data:`primo.constants.NA_MOLAR`, as ``--na-molar`` does."""
    cmd, p = _options()[("yields", "na_molar")]
    assert _default(cmd, p) == C.NA_MOLAR == Simulator().na_molar


def test_defaults_named_in_help_texts_are_the_librarys(run_cli):
    """Options that default to None (so that the command can tell "not given") name the
    library's default in their help."""
    _, out, _ = run_cli(["barcodes", "decode", "--help"])
    flat = " ".join(out.split())
    assert f"(default {library_default(BarcodeScheme, 'seed')}, the published" in flat
    assert f"(default {library_default(BarcodeDecoder, 'max_distance')})" in flat
    _, out, _ = run_cli(["extract", "--help"])
    assert f"(default {FASHION_MNIST_DIR})" in " ".join(out.split())


def test_barcodes_without_seed_use_the_schemes_default(run_cli):
    res, out, err = run_cli(["barcodes", "encode"], stdin="5\n")
    assert res.exit_code == 0, err
    assert out.strip() == BarcodeScheme().encode([5])[0]


def test_library_default_refuses_a_parameter_without_one():
    with pytest.raises(TypeError):
        library_default(encode_database, "model")
