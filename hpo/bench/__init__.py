"""Benchmarks, one module each, with distinct names (none is imported here: each pulls torch):

- :mod:`hpo.bench.trial_cost` (``hpo bench``): what a trial costs on a device, training,
  evaluation, data and Optuna bookkeeping, every figure also as a ratio to the textbook
  network (:class:`TrialCostSettings`, :func:`run_trial_cost_bench`).
- :mod:`hpo.bench.search` (``hpo bench-search``): does the search pay? Hypervolume per
  training epoch against baselines (:class:`SearchBenchSettings`, :func:`run_search_bench`).
- :mod:`hpo.bench.table` (``hpo bench-table``): the recorded benchmark, every point of a
  discrete space trained once per seed, its file and its loader; :mod:`hpo.bench.replay`
  (``hpo bench-search --table``) replays a method against it, with the outside baselines of
  :mod:`hpo.bench.baselines` (MOASHA, OptunaHub's multi-metric rule).
- :mod:`hpo.bench.loader` (``hpo data bench``): data-loader throughput (:func:`benchmark_loader`).
"""
