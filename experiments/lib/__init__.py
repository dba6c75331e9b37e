"""Support code of the studies in ``experiments/``: seed statistics and tables, how a step is run, counters.

Not part of the ``defect_plugins`` package (nothing there imports it, the wheel does not hold it):
the studies run from a clone, ``python experiments/<study>/<script>.py`` from the repository root.

* :mod:`experiments.lib.stats` - mean +- sd and paired per-seed differences;
* :mod:`experiments.lib.seeds` - the runs x seeds command line and tables of the seed studies;
* :mod:`experiments.lib.runs` - a step as a logged child process, a resumable training;
* :mod:`experiments.lib.complexity` - parameters and MACs of an mmpretrain classifier;
* :mod:`experiments.lib.mvtec_layout` - an anomalib datamodule for one folder in the MVTec AD layout.
"""
