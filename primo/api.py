"""The task-level Python API: one function per step of the pipeline (what ``import primo`` offers).

Each function does what the command of the same name does, takes its settings as keyword
arguments in library terms (no command-line flags), and returns a typed result::

    extract    images -> feature store                     ExtractResult
    train      feature store -> model directory            TrainResult
    encode_db  model + feature store -> pool directory     BuildResult
    query      model + query features -> probes.csv        ProbeResult
    analyze    pool + FASTQ reads -> counts, recall        AnalyzeResult
    simulate   model + features + queries -> experiment    SimulationResult
    run_benchmark  features + queries -> primo vs ANN peers    BenchmarkSummary

(``run_benchmark``, not ``benchmark``: ``primo.benchmark`` is the package of the ANN peers.)

Heavy dependencies (TensorFlow, faiss, ...) are imported inside the functions that need them.
The examples below use tiny data and settings so that they run in seconds (they are tested);
real runs use the defaults, which reproduce the paper.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = ["extract", "load_features", "train", "load_model", "encode_db", "query", "analyze",
           "simulate", "run_benchmark", "AnalyzeResult", "SimulationResult", "BenchmarkSummary",
           "example", "Example"]


# ------------------------------------------------------------------------------ typed results
@dataclasses.dataclass
class AnalyzeResult:
    """What :func:`analyze` wrote.

    Attributes
    ----------
    path : Path
        The output directory (``counts.csv.gz``, ``stats.json``; with distances or features also
        ``thresholds.csv``, ``recall.png`` and ``report.html``).
    counts : primo.reads.ReadCounts
        Reads per pool document (``image_ids``, ``counts``, ``stats``).
    search : dict or None
        The search evaluation (recall, proportion retrieved at recall r, mAP@k), when the query's
        distances were given.
    """

    path: Path
    counts: object
    search: dict | None = None


@dataclasses.dataclass
class SimulationResult:
    """What :func:`simulate` wrote: the output directory and its ``summary.json``.

    Attributes
    ----------
    path : Path
        The output directory (one query: its files directly; several: one folder per query).
    summary : dict
        The content of ``summary.json`` (``config``, ``queries``, ``provenance``, ...).
    """

    path: Path
    summary: dict

    @property
    def queries(self) -> list:
        """One dict per query: its ID, proportion retrieved at recall r, yields, reads."""
        return list(self.summary["queries"])


@dataclasses.dataclass
class BenchmarkSummary:
    """What :func:`run_benchmark` wrote: the output directory and its ``summary.json``.

    Attributes
    ----------
    path : Path
        The output directory (``benchmarks.csv``, ``benchmarks.png``, ``summary.json``).
    summary : dict
        The content of ``summary.json``; ``algorithms`` holds each algorithm's curve summary.
    """

    path: Path
    summary: dict

    @property
    def algorithms(self) -> dict:
        """Each algorithm's summary (proportion of the database retrieved at recall r, ...)."""
        return dict(self.summary["algorithms"])


# ------------------------------------------------------------------------------- the steps
def extract(inputs, output, model: str = "vgg16", **options):
    """Extract image features into a feature store (``primo extract``).

    Parameters
    ----------
    inputs : list of paths
        Image files, folders (searched recursively) and list files.
    output : path
        The feature store to write (``.h5``).
    model : str
        ``vgg16`` (the paper), ``resnet50``, ``hub:PATH``, ``fashion-embed`` (bundled),
        ``pixels[:SIZE]``, ...
    **options
        Passed to :func:`primo.features.extract.extract_images` (``weights``, ``ids``,
        ``resume``, ``overwrite``, ``batch_size``, ...).

    Returns
    -------
    primo.features.extract.ExtractResult

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, primo
    >>> from PIL import Image
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> (tmp / "images").mkdir()
    >>> for i in range(3):
    ...     Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(tmp / "images" / f"img{i}.png")
    >>> res = primo.extract([tmp / "images"], tmp / "features.h5", model="pixels:4")
    >>> res.n_written, res.dim
    (3, 16)
    """
    from .features.extract import extract_images

    return extract_images(list(inputs), output, model, **options)


def load_features(path):
    """Open a feature store (HDF5): document IDs beside a float32 N x D matrix, read in chunks.

    Parameters
    ----------
    path : path
        A store written by :func:`extract` or :func:`primo.features.store.write_features`.

    Returns
    -------
    primo.features.store.FeatureStore
        Use it as a context manager; ``ids``, ``n``, ``dim``, ``read()``, ``iter_chunks()``.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, primo
    >>> from primo.features.store import write_features
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "f.h5"
    >>> write_features(path, ["a", "b"], np.eye(2, 3, dtype=np.float32))
    >>> with primo.load_features(path) as store:
    ...     print(store.n, store.dim, store.ids.tolist(), store.read()[1].tolist())
    2 3 ['a', 'b'] [0.0, 1.0, 0.0]
    """
    from .features.store import FeatureStore

    return FeatureStore.open(path)


def train(features, out, settings=None, *, mapper=None, resume: bool = False,
          overwrite: bool = False, log=None, **options):
    """Train the feature -> DNA encoder against the yield predictor (``primo train``).

    Parameters
    ----------
    features : path or FeatureStore
        The training features.
    out : path
        The model directory to write (encoder, predictor, model card, metrics).
    settings : primo.training.trainer.TrainSettings, optional
        Every setting; the defaults are the paper's objective and predictor, with similar pairs
        defined by neighborhood (``neighbors=100``; the best measured, see the README). Giving
        ``threshold`` or ``threshold_quantile`` (and no ``neighbors``) selects the paper's global
        distance threshold. ``hybridization_c`` is the protocol's temperature (21 °C) and
        ``train_temperature_c`` the training simulator's (default:
        :func:`primo.training.trainer.default_train_temperature`). ``TrainSettings.paper()`` is the
        paper's method (global threshold 75, simulator at ``hybridization_c``).
    mapper : primo.parallel.Mapper, optional
        Where the thermodynamic simulations run (default: serial).
    resume, overwrite : bool
        Continue an interrupted run; replace an earlier model directory.
    log : callable(str), optional
        Receives one-line progress messages.
    **options
        Fields of ``TrainSettings`` that replace those of ``settings`` (``rounds``, ``steps``,
        ``threshold``, ``seed``, ...).

    Returns
    -------
    primo.training.trainer.TrainResult
        ``path``, ``card`` (the model card), ``metrics`` (one row per round), ``rounds_done``.

    Examples
    --------
    A tiny training (a real one keeps the defaults):

    >>> import tempfile, pathlib, numpy as np, primo
    >>> from primo.features.store import write_features
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    >>> write_features(tmp / "f.h5", [f"doc{i}" for i in range(40)], X)
    >>> res = primo.train(tmp / "f.h5", tmp / "model", threshold=None, rounds=1, steps=2,
    ...                   hidden=8, batch_size=8, seed_pairs=8, seed_epochs=1, sim_pairs=8,
    ...                   eval_pairs=4, final_eval_pairs=4, heldout_rows=8, seed=0)
    >>> res.rounds_done, (tmp / "model" / "card.json").exists()
    (1, True)
    """
    from .training.settings import TrainSettings
    from .training.trainer import train as _train

    settings = TrainSettings.from_options(base=settings, **options)
    return _train(features, out, settings, mapper=mapper, resume=resume, overwrite=overwrite,
                  log=log)


@dataclasses.dataclass(frozen=True)
class Example:
    """What :func:`example` writes: a 40-document feature store, a one-query store (its first
    row) and a model trained on it (tiny: for examples and trying the API, not for results)."""

    directory: Path
    features: Path
    queries: Path
    model: Path


_EXAMPLE: dict = {}


def example(directory=None) -> Example:
    """A tiny store, query and trained model to try the API on (written once per process).

    ``directory``: where to write them (default: a new temporary folder, reused by later calls in
    the same process, so that the examples of several functions share one training).

    >>> import primo
    >>> ex = primo.example()
    >>> sorted(p.name for p in ex.directory.iterdir())
    ['f.h5', 'model', 'q.h5']
    """
    import tempfile

    import numpy as np

    from .features.store import write_features

    key = None if directory is None else str(Path(directory).resolve())
    if key in _EXAMPLE:
        return _EXAMPLE[key]
    tmp = Path(tempfile.mkdtemp(prefix="primo-example-")) if directory is None else Path(directory)
    tmp.mkdir(parents=True, exist_ok=True)
    X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    write_features(tmp / "f.h5", [f"doc{i}" for i in range(40)], X)
    write_features(tmp / "q.h5", ["q0"], X[:1])
    train(tmp / "f.h5", tmp / "model", threshold=None, rounds=1, steps=2, hidden=8, batch_size=8,
          seed_pairs=8, seed_epochs=1, sim_pairs=8, eval_pairs=4, final_eval_pairs=4,
          heldout_rows=8, seed=0)
    ex = _EXAMPLE[key] = Example(tmp, tmp / "f.h5", tmp / "q.h5", tmp / "model")
    return ex


def load_model(path):
    """Load a model directory written by :func:`train`.

    Returns
    -------
    primo.model_dir.PrimoModel
        ``encode_features(X)`` gives each row's 80-nt feature region; ``card`` is the model card.

    Examples
    --------
    >>> import primo
    >>> ex = primo.example()      # a tiny store, query and model (trained once per process)
    >>> model = primo.load_model(ex.model)
    >>> with primo.load_features(ex.features) as store:
    ...     X = store.read(0, 2)
    >>> [len(s) for s in model.encode_features(X)]
    [80, 80]
    """
    from .model_dir import load_model as _load

    return _load(path)


def encode_db(model, features, out, **options):
    """Encode every document of a feature store as an oligo pool ready to order (``primo encode-db``).

    Parameters
    ----------
    model : path or PrimoModel
        A model directory written by :func:`train`.
    features : path
        The database's feature store.
    out : path
        The pool directory to write (``database_seqs.csv.gz``, Twist order, manifest, QC).
    **options
        Passed to :func:`primo.workflows.encode_db.encode_database` (``qc`` "fail", "warn" or
        "off", ``chunksize``, ``progress``, ...).

    Returns
    -------
    primo.oligos.pool.BuildResult
        ``path``, ``n_documents``, the QC ``report`` and the ``manifest``.

    Examples
    --------
    >>> import pathlib, tempfile, primo
    >>> ex = primo.example()      # a tiny store, query and model (trained once per process)
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> pool = primo.encode_db(ex.model, ex.features, tmp / "pool", qc="warn", progress=False)
    >>> pool.n_documents, (tmp / "pool" / "database_seqs.csv.gz").exists()
    (40, True)
    """
    from .workflows.encode_db import encode_database

    return encode_database(model, features, out, **options)


def query(model, out, *, features=None, images=None, **options):
    """Design the query probes and their IDT order sheet (``primo query``).

    Parameters
    ----------
    model : path or PrimoModel
        A model directory written by :func:`train`.
    out : path
        The probe file to write (``probes.csv``; the order sheet and manifest go beside it).
    features : path, optional
        A feature store of the queries ...
    images : list of paths, optional
        ... or query images (their features are extracted as the model's were).
    **options
        Passed to :func:`primo.workflows.query.design_probes` (``query_ids``, ``scale``,
        ``purification``, ...).

    Returns
    -------
    primo.workflows.query.ProbeResult
        ``paths``, ``query_ids`` and each query's 80-nt feature region.

    Examples
    --------
    >>> import pathlib, tempfile, primo
    >>> ex = primo.example()      # a tiny store, query and model (trained once per process)
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> probes = primo.query(ex.model, tmp / "probes.csv", features=ex.queries)
    >>> probes.query_ids, len(probes.features[0])
    (['q0'], 80)
    """
    from .workflows.query import design_probes

    return design_probes(model, out, features=features, images=images or None, **options)


def analyze(pool, reads, out, *, counts=None, distances=None, features=None, queries=None,
            query_id=None, input_counts=None, labels=None, query_label=None, name=None,
            images=None, exclude=(), settings=None, mapper=None, show_progress: bool = False,
            overwrite: bool = False, **options):
    """Count the reads of every pool document and evaluate the search (``primo analyze``).

    Parameters
    ----------
    pool : path
        A pool directory (:func:`encode_db`) or a ``database_seqs.csv.gz``.
    reads : list of paths
        FASTQ files (plain or gzip; paired ``_R1``/``_R2`` files are recognised); or none, with
        ``counts``.
    out : path
        The output directory to write.
    counts : path, optional
        An ``ImageID,Count`` table instead of reads (aligned to ``pool`` when given).
    distances : path, optional
        Every document's distance to the query (``ImageID,Euclidean Distance``) ...
    features, queries : path, optional
        ... or the database and query feature stores, to compute them (``query_id``: which
        query of ``queries``).
    input_counts : path, optional
        Counts of the pool sequenced without hybridization: documents are ranked by enrichment.
    labels : path, optional
        An ``ImageID,Label`` table, for mAP@k (``query_label``: the query's, else looked up
        there).
    name, images
        The results page: the query's name, a folder of the documents' pictures.
    exclude : list of str
        ImageIDs whose counts are set to 0.
    settings : AnalyzeSettings or dict, optional
        The settings (:class:`primo.workflows.analyze_settings.AnalyzeSettings`: pairing, the
        read structure, the counting, ``k``, ``map_ks``, ``gallery``); default its defaults.
    mapper : primo.parallel.Mapper, optional
        Where reads are decoded (default: here, serially; ``primo.parallel.get_mapper(4)`` for
        4 local processes).
    **options
        Settings by name, replacing those of ``settings`` (``k=10``, ``paired=True``,
        ``prefix_length=25``, ``chunksize=...``, ``min_yield=...``; ``structure_options``, a dict
        of read-structure settings, is the older spelling).

    Returns
    -------
    AnalyzeResult

    Examples
    --------
    Reads of a 3-document pool, each oligo behind 25 random bases:

    >>> import csv, gzip, tempfile, pathlib, numpy as np, primo
    >>> from primo.oligos.pool import build_pool
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> feats = ["".join(rng.choice(list("ACGT"), 80)) for _ in range(3)]
    >>> _ = build_pool(["a", "b", "c"], feats, tmp / "pool")
    >>> with gzip.open(tmp / "pool" / "database_seqs.csv.gz", "rt") as fh:
    ...     oligos = [row["Sequence"] for row in csv.DictReader(fh)]
    >>> reads = [oligos[i] for i in (0, 0, 0, 2)]
    >>> fastq = "".join(f"@r{j}\\n{'ACGTA' * 5}{s[:125]}\\n+\\n{'I' * 150}\\n" for j, s in enumerate(reads))
    >>> _ = (tmp / "reads.fastq").write_text(fastq)
    >>> res = primo.analyze(tmp / "pool", [tmp / "reads.fastq"], tmp / "out")
    >>> dict(zip(res.counts.image_ids.tolist(), res.counts.counts.tolist()))
    {'a': 3, 'b': 0, 'c': 1}
    """
    from .errors import UsageError
    from .io import atomic_dir
    from .parallel import SerialMapper
    from .workflows.analyze import analyze as _analyze, count
    from .workflows.analyze_settings import AnalyzeSettings

    settings = AnalyzeSettings.from_options(settings, **options)
    reads = [Path(r) for r in (reads or ())]
    if bool(reads) == bool(counts):
        raise UsageError("give read files or a counts table (one of them)", option="counts")
    if reads and not pool:
        raise UsageError("the pool is needed to decode reads", option="pool")
    if distances and (features or queries):
        raise UsageError("give `distances` or `features` with `queries`, not both",
                         option="distances")
    if bool(features) != bool(queries):
        raise UsageError("`features` and `queries` go together", option="features")
    for path, what in [(pool, "pool"), (counts, "counts"), (distances, "distances"),
                       (features, "features"), (queries, "queries"), (labels, "labels"),
                       (input_counts, "input_counts"), (images, "images"),
                       *[(r, "reads") for r in reads]]:
        if path and not Path(path).exists():
            raise UsageError(f"{path} does not exist", option=what)
    mapper = mapper if mapper is not None else SerialMapper()
    out = Path(out)
    with atomic_dir(out, command="analyze", overwrite=overwrite) as tmp:
        rc = count(pool_path=pool, reads=reads, counts_file=counts, paired=settings.paired,
                   exclude=exclude, structure_options=settings.structure_options(),
                   mapper=mapper, show_progress=show_progress, **settings.count_options())
        search = _analyze(tmp, rc, input_counts=input_counts, distances=distances,
                          features=features, query=queries, query_id=query_id, labels=labels,
                          query_label=query_label, name=name, images=images,
                          **settings.search_options())
    return AnalyzeResult(path=out, counts=rc, search=search)


def simulate(model, features, queries, out, *, pool=None, query_ids=None, mapper=None,
             labels=None, progress: bool = False, protocol=None, wetlab=None, backend=None,
             loop_enthalpies=None, stacks=None, perturb=None, energy_cache=None, warn=None,
             **config) -> SimulationResult:
    """The wet-lab experiment in silico (``primo simulate``).

    Parameters
    ----------
    model : path or PrimoModel
        A model directory written by :func:`train`.
    features : path
        The database's feature store.
    queries : path
        The queries' feature store.
    out : path
        The output directory to write.
    pool : path, optional
        A pool written by :func:`encode_db` from ``features`` (its barcodes and feature regions).
    query_ids : list of str, optional
        Which queries (default: all).
    mapper : primo.parallel.Mapper, optional
        Where the thermodynamic simulations run (default: serial).
    labels : dict, optional
        ImageID -> label of documents and queries, for mAP@k.
    protocol : dict or primo.simulation.capture.Protocol, optional
        The hybridization protocol; a dict holds the settings given
        (:meth:`~primo.simulation.capture.Protocol.from_options`: the ramp ends at the model
        card's hybridization temperature unless ``anneal_to`` is given; the kinetic capture's
        ``ramp_program`` is ``auto``, from the card's training temperature, unless given).
        Default: the paper's, the ramp program ``auto``.
    wetlab : dict or primo.simulation.wetlab.WetLabModel, optional
        The wet-lab step's settings (synthesis spread, PCR bias, capture, depth).
    backend, loop_enthalpies, stacks : str, optional
        Override the model card's simulator (:func:`primo.simulation.search.simulator_for`).
    perturb : (float, int), optional
        ``(sigma, seed)``: every nearest-neighbor free energy of the simulator perturbed by
        seeded Gaussian noise of ``sigma`` kcal/mol (:class:`primo.thermo.simulator.Simulator`),
        a physics the model was not trained on.
    energy_cache : path, optional
        A file of free energies kept across runs (:mod:`primo.thermo.store`; created when it does
        not exist): a run under the same physics reuses every energy an earlier one computed
        (the same numbers, bit for bit), so runs that change only the capture, the kinetics, the
        washes or the wet lab cost little. Recorded in ``summary.json`` (``energy_cache``).
    warn : callable(str), optional
        Receives warnings (default: :func:`warnings.warn`).
    **config
        Fields of :class:`primo.workflows.experiment.ExperimentConfig` (``refine``, ``sample``,
        ``k``, ``seed``, ``reads``, ``capture``, ``probe_nm`` (nM, or ``"auto"``: the probe
        sized to the database, :func:`primo.simulation.capture.auto_probe_nm`), ...).

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> import pathlib, tempfile, primo
    >>> ex = primo.example()      # a tiny store, query and model (trained once per process)
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> sim = primo.simulate(ex.model, ex.features, ex.queries, tmp / "sim",
    ...                      refine=5, sample=0, k=5, seed=0)
    >>> sim.queries[0]["query_id"], sim.queries[0]["refined"]
    ('q0', 5)
    """
    from .model_dir import PrimoModel, load_model, training_temperature
    from .simulation.capture import Protocol
    from .simulation.search import shipped_loops_warning, simulator_for
    from .simulation.wetlab import WetLabModel
    from .workflows.experiment import ExperimentConfig, run_experiment

    if not isinstance(model, PrimoModel):
        model = load_model(model)
    capture = config.get("capture", ExperimentConfig.capture)
    if isinstance(protocol, dict):
        options = dict(protocol)
        if options.get("probe_nm") is not None and "probe_nm" not in config:
            config["probe_nm"] = options["probe_nm"]   # a number or "auto", sized to the database
        protocol = Protocol.from_options(capture, hybridization_c=model.hybridization_c,
                                         training_c=training_temperature(model.card), **options)
    if isinstance(wetlab, dict):
        wetlab = WetLabModel(**wetlab)
    message = shipped_loops_warning(model, capture, backend, loop_enthalpies)
    if message:
        if warn is None:
            import warnings

            warnings.warn(message, stacklevel=2)
        else:
            warn(message)
    simulator = simulator_for(model, backend, loop_enthalpies, stacks=stacks)
    if perturb is not None:
        simulator = simulator.derive(perturb=perturb)
    if energy_cache is not None:
        from .errors import UsageError
        from .thermo.store import EnergyStore

        cache_at = Path(energy_cache).resolve()
        if Path(out).resolve() in (cache_at, *cache_at.parents):
            raise UsageError(f"the energy cache {energy_cache} is inside the output folder {out}",
                             option="energy_cache",
                             hint="keep it outside: the output is written anew on each run")
        simulator.energy_store = EnergyStore(energy_cache)
    cfg = ExperimentConfig(protocol=protocol, **config)
    cfg.check()
    try:
        summary = run_experiment(model, features, queries, out, pool=pool, query_ids=query_ids,
                                 config=cfg, wetlab=wetlab,
                                 simulator=simulator, mapper=mapper, labels=labels,
                                 progress=progress)
    finally:
        if simulator.energy_store is not None:
            simulator.energy_store.close()
    return SimulationResult(path=Path(out), summary=summary)


def run_benchmark(features, queries, out, *, k: int = 100, peers=None, **options) -> BenchmarkSummary:
    """primo against in-silico similarity search (``primo benchmark``).

    Parameters
    ----------
    features, queries : path
        The database's and the queries' feature stores.
    out : path
        The output directory to write.
    k : int
        Recall is of the ``k`` nearest neighbors.
    peers : list of str, optional
        ANN peers (default: every one installed: hnsw, faiss-ivf, annoy, lsh, mrpt, ...).
    **options
        Passed to :func:`primo.benchmark.core.benchmark_stores` (``counts_dir``: primo's read
        counts per query, ``primo_curve``, ``peer_options``, ``seed``, ...).

    Returns
    -------
    BenchmarkSummary

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, primo
    >>> from primo.features.store import write_features
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> X = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    >>> write_features(tmp / "f.h5", [f"doc{i}" for i in range(200)], X)
    >>> write_features(tmp / "q.h5", ["q0", "q1"], X[:2] + 0.01)
    >>> res = primo.run_benchmark(tmp / "f.h5", tmp / "q.h5", tmp / "bench", k=10, peers=["lsh"])
    >>> sorted(res.algorithms)       # the peers, and the curves of a random and a perfect search
    ['chance', 'lsh', 'oracle']
    """
    from .benchmark.core import benchmark_stores

    summary = benchmark_stores(features, queries, out, k=k, peers=peers, **options)
    return BenchmarkSummary(path=Path(out), summary=summary)
