"""Benchmarks, one module each, with distinct names (none is imported here: each pulls torch):

- :mod:`hpo.bench.trial_cost` (``hpo bench``): what a trial costs on a device, training,
  evaluation, data and Optuna bookkeeping, every figure also as a ratio to the textbook
  network (:class:`TrialCostSettings`, :func:`run_trial_cost_bench`).
- :mod:`hpo.bench.search` (``hpo bench-search``): does the search pay? Hypervolume per
  training epoch against baselines (:class:`SearchBenchSettings`, :func:`run_search_bench`).
- :mod:`hpo.bench.loader` (``hpo data bench``): data-loader throughput (:func:`benchmark_loader`).
"""
