"""Does the search pay? Hypervolume per training epoch, search methods against baselines.

``hpo bench-search`` gives every method the same budget of *training epochs* per seed and
records, after each trial, (epochs spent so far, hypervolume of the COMPLETE trials' front):

- ``random``: random search, no pruning;
- ``seed_grid``: the reference designs (``seed_designs.yaml`` mapped onto the space), in
  file order, until the budget or the designs run out;
- ``nsga2``: NSGA-II, no pruning;
- ``tpe_mopruning`` (the default method, what ``hpo run`` does): the preset's TPE sampler
  with the Pareto-rank pruner (:class:`hpo.pruning.ParetoHalvingPruner`);
- ``nsga2_mopruning``: NSGA-II with that pruner;
- ``tpe`` (live only when asked for): TPE without pruning, to tell the sampler's share of
  ``tpe_mopruning``'s result from the pruner's;
- ``screen_promote`` (on request, live or replayed): :class:`hpo.screening.ScreenPromoteSampler`
  with pruner ``planned``, screening designs for an epoch and promoting the promising ones.

Live (:mod:`hpo.bench.live`), every (method, seed) trains a real study. With ``table`` set
(``--table``, a file of ``hpo bench-table``), nothing is trained: every (method, seed) is
replayed against the recorded curves (:mod:`hpo.bench.replay`), and more methods join: ``tpe``,
``moasha`` and ``hub_multi_metric`` (outside pruners written from their rules) and
``bohb_tpe`` (a BOHB-style multi-fidelity TPE) from :mod:`hpo.bench.baselines`, and the
peers' own code, ``syne_moasha`` (Syne Tune) and ``smac_mf`` (SMAC3), from
:mod:`hpo.bench.rivals` (skipped in one line each when the ``[bench]`` extra is missing).
On a table the headline front is held out (:mod:`hpo.bench.summary`), and random search's
proposals feed the screening oracle of :mod:`hpo.bench.bounds` as a reference line.

A method's final hypervolume is the one after its last trial that ended within the budget;
the trial that crosses the budget is run (a trial is not cut short) but does not count.

Layers: :mod:`~hpo.bench.settings` <- :mod:`~hpo.bench.front` <- :mod:`~hpo.bench.live`,
:mod:`~hpo.bench.replay` (<- :mod:`~hpo.bench.rivals`), :mod:`~hpo.bench.bounds`,
:mod:`~hpo.bench.summary` <- this driver; :mod:`~hpo.bench.plot` reads a summary.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hourglass.errors import ConfigError
from hpo.bench.bounds import random_oracle
from hpo.bench.front import hv_at, table_reference
from hpo.bench.live import reference_point, run_method
from hpo.bench.replay import replay_method
from hpo.bench.rivals import missing_extra
from hpo.bench.settings import SearchBenchSettings
from hpo.bench.summary import share_with_interval, summarize
from hpo.bench.table import cached_table

__all__ = ["run_search_bench", "available_methods", "RunStore"]


def available_methods(s: SearchBenchSettings, echo: Callable[[str], Any] = print) -> SearchBenchSettings:
    """``s`` without the rivals whose package is missing, each named in one line by ``echo``."""
    kept = []
    for m in s.methods:
        why = missing_extra(m)
        if why is None:
            kept.append(m)
        else:
            echo(why)
    if not kept:
        raise ConfigError("methods: none of them can run here (see the lines above)")
    return replace(s, methods=tuple(kept))


class RunStore:
    """Finished runs kept as one JSON file each in ``folder``, so that a long benchmark
    resumes where it stopped and a shorter one reuses them. The folder is tied to the
    settings that decide a run's result (all but seeds, methods and workers) and to the
    table's bytes: other settings are refused in one line."""

    def __init__(self, folder: str | Path, s: SearchBenchSettings) -> None:
        self.folder = Path(folder)
        keep = {k: v for k, v in asdict(s).items() if k not in ("seeds", "seed_offset", "methods", "workers")}
        if s.table:
            keep["table_sha256"] = hashlib.sha256(Path(s.table).read_bytes()).hexdigest()
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = self.folder / "settings.json"
        if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) != json.loads(json.dumps(keep)):
            raise ConfigError(
                f"{self.folder}: holds runs of other settings or another table; use another folder"
            )
        stamp.write_text(json.dumps(keep, indent=1) + "\n", encoding="utf-8")

    def _path(self, name: str, seed: int) -> Path:
        return self.folder / f"{name}_s{seed}.json"

    def get(self, name: str, seed: int) -> Any:
        path = self._path(name, seed)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def put(self, name: str, seed: int, value: Any) -> None:
        path = self._path(name, seed)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value), encoding="utf-8")
        tmp.replace(path)  # atomic: an interrupted write leaves no half file


def run_search_bench(
    s: SearchBenchSettings,
    *,
    progress: bool = True,
    echo: Callable[[str], Any] = print,
    log_runs: bool = False,
    runs_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The reference point, every (method, seed) run (``s.workers`` processes), on a table
    the oracle's reference line, then :func:`hpo.bench.summary.summarize`. One line per run
    under the progress bar, or through ``echo`` with ``log_runs`` (a log, no terminal).
    ``runs_dir``: keep every finished run there and reuse those found (:class:`RunStore`)."""
    asked = s.methods
    s = available_methods(s, echo)
    store = RunStore(runs_dir, s) if runs_dir is not None else None
    jobs = list(itertools.product(s.seed_list, s.methods))
    runs: list[dict[str, Any]] = []
    if store is not None:
        runs = [r for seed, method in jobs if (r := store.get(method, seed)) is not None]
        done = {(r["seed"], r["method"]) for r in runs}
        jobs = [j for j in jobs if j not in done]
    key = "hv_heldout" if s.table else "hv"
    with contextlib.ExitStack() as stack:
        pool = None
        if s.workers > 1:
            ctx = multiprocessing.get_context("spawn")  # fork after torch has started threads is unsafe
            stack.enter_context(_pinned_hash_seed())
            pool = stack.enter_context(ProcessPoolExecutor(max_workers=s.workers, mp_context=ctx))
        if s.table:
            reference = table_reference(cached_table(s.table))
        else:
            reference = reference_point(s, progress=progress, map_fn=pool.map if pool else map)
        run = replay_method if s.table else run_method
        bar = stack.enter_context(
            tqdm(total=len(jobs), desc="bench-search", unit="run", disable=not progress)
        )
        for out in _map(pool, run, [(s, method, seed, reference) for seed, method in jobs]):
            runs.append(out)
            if store is not None:
                store.put(out["method"], out["seed"], out)
            bar.update(1)
            line = (
                f"{out['method']:16s} seed {out['seed']}: HV "
                f"{hv_at(out['records'], s.budget_epochs, key):.4f}"
                f"  {len(out['records'])} trials, {out['spent']} epochs, {out['wall_s']:.1f} s"
            )
            if progress:
                bar.write(line)
            elif log_runs:
                echo(line)
        extra: dict[str, Any] = {"skipped": [m for m in asked if m not in s.methods]}
        if s.table and "random" in s.methods:
            finals = {
                (r["seed"], v): hv_at(r["records"], s.budget_epochs, v)
                for r in runs
                if r["method"] == "random"
                for v in ("hv_heldout", "hv")
            }
            cached = {seed: store.get("oracle", seed) if store else None for seed in s.seed_list}
            todo = [seed for seed in s.seed_list if cached[seed] is None]
            args = [
                (s, seed, reference, {v: finals[(seed, v)] for v in ("hv_heldout", "hv")}) for seed in todo
            ]
            for seed, line in zip(todo, _map(pool, random_oracle, args, ordered=True)):
                cached[seed] = line
                if store is not None:
                    store.put("oracle", seed, line)
            extra["oracle"] = _oracle_line([cached[seed] for seed in s.seed_list], s.seed_list)
    return summarize(runs, s, reference, extra)


@contextlib.contextmanager
def _pinned_hash_seed() -> Iterator[None]:
    """While the pool starts its processes, ``PYTHONHASHSEED`` is ``0`` unless the caller set
    one. Why: SMAC3 orders some of its choices by iterating sets of configurations, so a
    ``smac_mf`` run depends on the process's string-hash seed; spawned processes with one
    fixed seed give the same runs on every invocation, and the same as a serial run under
    ``PYTHONHASHSEED=0``. The variable is put back afterwards."""
    if "PYTHONHASHSEED" in os.environ:
        yield
        return
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        yield
    finally:
        del os.environ["PYTHONHASHSEED"]


def _map(
    pool: ProcessPoolExecutor | None,
    fn: Callable[..., Any],
    args: list[tuple[Any, ...]],
    *,
    ordered: bool = False,
) -> Iterator[Any]:
    """``fn(*a)`` for each ``a``: here in order, or in ``pool`` as they finish (``ordered``:
    in order)."""
    if pool is None:
        yield from (fn(*a) for a in args)
        return
    futures = [pool.submit(fn, *a) for a in args]
    yield from (f.result() for f in (futures if ordered else as_completed(futures)))


def _oracle_line(per_seed: list[dict[str, dict[str, int | None]]], seeds: list[int]) -> dict[str, Any]:
    """The oracle's share of seeds reaching random's final front, per view, with intervals."""
    out: dict[str, Any] = {
        "what": "screening oracle on random search's own proposals and seed draws "
        "(hpo.bench.bounds): an upper bound for any pruner over random proposals",
        "seeds": seeds,
    }
    for view in ("hv_heldout", "hv"):
        name = "heldout" if view == "hv_heldout" else "as_trained"
        out[name] = {
            w: share_with_interval([o[view][w] is not None for o in per_seed])
            for w in ("within_third", "within_sixth")
        }
        out[name]["epochs_within_third_per_seed"] = [o[view]["within_third"] for o in per_seed]
    return out
