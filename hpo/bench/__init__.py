"""Benchmarks, one module each, with distinct names (none is imported here: several pull torch):

- :mod:`hpo.bench.trial_cost` (``hpo bench``): what a trial costs on a device, training,
  evaluation, data and Optuna bookkeeping, every figure also as a ratio to the textbook
  network (:class:`TrialCostSettings`, :func:`run_trial_cost_bench`).
- ``hpo bench-search``, does the search pay? Hypervolume per training epoch against
  baselines, in layers that import one way: :mod:`hpo.bench.settings` (methods, settings,
  presets) <- :mod:`hpo.bench.front` (normalisation, a run's records) <- :mod:`hpo.bench.live`
  (real studies) and :mod:`hpo.bench.replay` (against a recorded table, with
  :mod:`hpo.bench.ledger`'s one seed per design, the rules of :mod:`hpo.bench.baselines` and
  the peers' code in :mod:`hpo.bench.rivals`) <- :mod:`hpo.bench.bounds` (oracle bounds) and
  :mod:`hpo.bench.summary` (held-out and as-trained views, tests against the default) <-
  :mod:`hpo.bench.search` (the driver); :mod:`hpo.bench.plot` draws a summary.
- :mod:`hpo.bench.table` (``hpo bench-table``): the recorded benchmark, every point of a
  discrete space trained once per seed, its file, its loader, more seeds.
- :mod:`hpo.bench.loader` (``hpo data bench``): data-loader throughput (:func:`benchmark_loader`).
"""
