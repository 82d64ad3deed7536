"""How good a similarity search is: nearest neighbors, threshold tables, recall curves, mAP@k,
enrichment, and their plots.

* :mod:`primo.evaluation.neighbors` -- exact k nearest neighbors (the one implementation),
  squared distances, mAP@k of exact search (paper 004);
* :mod:`primo.evaluation.recall` -- nearest neighbors, enrichment scores, threshold tables,
  recall curves, mAP@k;
* :mod:`primo.evaluation.plots` -- Fig. 3B-style recall plots (matplotlib);
* :mod:`primo.evaluation.results` -- a query's results summarized for the results page
  (thresholds, distance boxes).
"""
