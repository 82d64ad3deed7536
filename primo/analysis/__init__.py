"""Analysis of similarity-search experiments: reads -> counts -> search quality.

Modules (imported on use, so ``import primo.analysis`` stays light):

* :mod:`primo.analysis.recall` -- nearest neighbours, threshold tables, recall curves, mAP@k;
* :mod:`primo.analysis.plots` -- Fig. 3B-style recall plots (matplotlib);
* :mod:`primo.analysis.wetlab` -- the wet-lab step in silico;
* :mod:`primo.analysis.benchmark` / :mod:`primo.analysis.ann` -- primo against ANN peers.
"""
