"""The recorded benchmark: every point of a discrete space trained once per training seed.

Why. A live comparison of search methods costs minutes per seed, so it cannot have the 20-50
seeds that the seed-to-seed spread needs. Recorded benchmarks (NAS-Bench-201, LCBench, YAHPO)
train every point once, keeping its whole learning curve, and replay any search method against
the record in seconds (:mod:`hpo.bench.replay`).

How. ``hpo bench-table`` runs an ordinary study of the project (preset
``studies/bench_table_tiny.yaml``): the space has only ``choices`` and searches
``schedule.seed``, so its combinations are exactly (point x training seed). They are
enqueued once (:func:`plan_table`) and trained without pruning by the project's workers, so
the table resumes where it stopped and several workers share it. :func:`export_table` then
turns the study's trial records into one compact file: per point its params, its full
resolved config (retrain it with ``hpo train``), its counted costs, and per seed the curve of
PCKh, loss, charged training time and wall time after each epoch.

The file (``.json.gz``, see :data:`TABLE_KIND`) is checked on load (:func:`load_table`); a
malformed one is refused in one line.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from hourglass.errors import ConfigError
from hpo import record as rec
from hpo.preset import StudyPreset
from hpo.record import config_hash
from hpo.space import SearchSpace
from hpo.space_check import walk_combinations

__all__ = [
    "TABLE_KIND",
    "TABLE_VERSION",
    "SEED_PARAM",
    "BenchTable",
    "TablePoint",
    "grid_trials",
    "plan_table",
    "export_table",
    "write_table",
    "read_table_doc",
    "load_table",
    "cached_table",
    "point_key",
    "params_key",
    "seeds_preset",
    "merge_tables",
]

TABLE_KIND = "hourglass-hpo bench table"
TABLE_VERSION = 1
SEED_PARAM = "schedule.seed"  # the space param that is the training seed, not a design choice
_DIGITS = 5  # decimals kept for the curves (PCKh in percent, seconds, loss ~1e-3)


def grid_trials(space: SearchSpace) -> list[dict[str, Any]]:
    """Every combination of the space's choices as Optuna params (encoded), in a fixed order:
    training seed outermost, so that a partial run has whole seeds. Refuses a space that is
    not a finite grid or has no ``schedule.seed`` param."""
    for p in space.params:
        if p.kind != "categorical":
            raise ConfigError(
                f"{space.source}: {p.name}: the bench table needs a space of `choices` only, "
                f"but got a {p.kind} range"
            )
    names = [p.name for p in space.params]
    if SEED_PARAM not in names:
        raise ConfigError(
            f"{space.source}: the bench table needs a {SEED_PARAM} param (the training seeds), "
            f"but the space searches {', '.join(names)}"
        )
    order = [p for p in space.params if p.name == SEED_PARAM] + [
        p for p in space.params if p.name != SEED_PARAM
    ]
    base = {"model": space.base["model"], "schedule": space.base["schedule"]}
    out = []
    for _, chosen in walk_combinations(order, base, lambda i, p: p.grid_values()):
        values = {order[i].name: order[i].encode(v) for i, v in chosen}
        out.append({p.name: values[p.name] for p in space.params if p.name in values})  # the space's order
    return out


def plan_table(study: Any, trials: Sequence[Mapping[str, Any]]) -> int:
    """Enqueue the grid (:func:`grid_trials`) once per study (a resumed study keeps its
    queue); returns how many trials were enqueued now. Call it under
    :func:`hpo.storage.creation_lock`."""
    if rec.study_get(study, rec.STUDY_TABLE_PLANNED):
        return 0
    for params in trials:
        study.enqueue_trial(params, skip_if_exists=True)
    rec.study_put(study, rec.STUDY_TABLE_PLANNED, len(trials))
    return len(trials)


def point_key(config: Mapping[str, Any]) -> str:
    """The identity of a design point: its model and schedule, the training seed left out.
    A field set to None is left out too: None is a field's default, so a table written before
    the field existed (no key) and one written after (the key, None) hold the same design."""
    model = {k: v for k, v in (config.get("model") or {}).items() if v is not None}
    schedule = {k: v for k, v in (config.get("schedule") or {}).items() if k != "seed" and v is not None}
    return config_hash({"model": model, "schedule": schedule})


@dataclass(frozen=True)
class TablePoint:
    """One point: its params (without the seed), resolved config (seed 0), counted costs, and
    per training seed its curves (one value per epoch)."""

    params: dict[str, Any]
    config: dict[str, Any]
    costs: dict[str, int]
    runs: dict[int, dict[str, tuple[float, ...]]]  # seed -> {"pckh", "loss", "time_s", "wall_s"}

    @property
    def key(self) -> str:
        return point_key(self.config)


@dataclass(frozen=True)
class BenchTable:
    """A loaded table (see the module docstring)."""

    source: str
    space: dict[str, Any]  # the space document the table was made from (seed param included)
    preset: dict[str, Any]
    epochs: int
    seeds: tuple[int, ...]
    points: tuple[TablePoint, ...]

    def search_space(self) -> SearchSpace:
        """The space a replayed search samples: the table's space without the seed param."""
        doc = dict(self.space)
        doc["params"] = {k: v for k, v in (doc.get("params") or {}).items() if k != SEED_PARAM}
        return SearchSpace.from_dict(doc, source=f"{self.source} (space)")

    def by_params(self) -> dict[str, TablePoint]:
        """Points keyed by :func:`params_key` of their Optuna params."""
        return {params_key(p.params): p for p in self.points}


def params_key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True)


# ----------------------------------------------------------------------------- export
def _round(xs: Sequence[float]) -> list[float]:
    return [round(float(x), _DIGITS) for x in xs]


def export_table(study: Any, preset: StudyPreset, space: SearchSpace) -> dict[str, Any]:
    """The table document of a bench-table study: every point with all of its seeds
    complete (a point missing a seed is left out; ``missing`` counts them)."""
    import optuna

    epochs = int(preset.schedule["epochs"])
    grid = grid_trials(space)
    seeds = sorted({int(t[SEED_PARAM]) for t in grid})
    points: dict[str, dict[str, Any]] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        r = rec.TrialRecord.of(t)
        if len(r.curve) != epochs or not r.config:
            continue
        seed = int(r.config["schedule"]["seed"])
        config = {**r.config, "schedule": {**r.config["schedule"], "seed": 0}}
        entry = points.setdefault(
            point_key(config),
            {
                "params": {k: v for k, v in t.params.items() if k != SEED_PARAM},
                "config": config,
                "costs": {
                    "params": r.params,
                    "flops": r.flops,
                    "ops_per_step": r.ops_per_step,
                    "layers": r.layers,
                },
                "runs": {},
            },
        )
        entry["runs"].setdefault(
            str(seed),
            {  # a duplicate (a retried trial) keeps the first
                key: _round([p[key] for p in r.curve]) for key in ("pckh", "loss", "time_s", "wall_s")
            },
        )
    n_points = len({params_key({k: v for k, v in t.items() if k != SEED_PARAM}) for t in grid})
    complete = [p for p in points.values() if len(p["runs"]) == len(seeds)]
    return {
        "kind": TABLE_KIND,
        "version": TABLE_VERSION,
        "study": study.study_name,
        "space": dict(space.doc),
        "preset": {**preset.to_dict(), "storage": None},
        "epochs": epochs,
        "seeds": seeds,
        "grid_points": n_points,
        "missing": n_points - len(complete),
        "points": sorted(complete, key=lambda p: params_key(p["params"])),
    }


def write_table(doc: Mapping[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = json.dumps(doc, separators=(",", ":"), sort_keys=False).encode()
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(blob)  # no name or time in the header: the same table gives the same bytes
    return path


# ----------------------------------------------------------------------------- load
def _fail(path: Path, what: str) -> ConfigError:
    return ConfigError(f"{path}: not a bench table: {what}")


def read_table_doc(path: str | Path) -> Any:
    """A table file's JSON document, unchecked (:func:`load_table` checks it)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such bench table (make one with `hpo bench-table`)")
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, EOFError, ValueError) as exc:
        raise _fail(
            path, f"cannot read it as (gzipped) JSON ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None


def load_table(path: str | Path) -> BenchTable:
    """Read and check a table file; a malformed one raises a one-line ConfigError."""
    path = Path(path)
    doc = read_table_doc(path)
    if not isinstance(doc, dict) or doc.get("kind") != TABLE_KIND:
        raise _fail(path, f"expected kind {TABLE_KIND!r}")
    if doc.get("version") != TABLE_VERSION:
        raise _fail(path, f"expected version {TABLE_VERSION}, but got {doc.get('version')!r}")
    epochs, seeds = doc.get("epochs"), doc.get("seeds")
    if not isinstance(epochs, int) or epochs < 1:
        raise _fail(path, f"epochs: expected an integer >= 1, but got {epochs!r}")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise _fail(path, f"seeds: expected a non-empty list of integers, but got {seeds!r}")
    if not isinstance(doc.get("space"), dict) or not isinstance(doc.get("points"), list) or not doc["points"]:
        raise _fail(path, "expected a 'space' mapping and a non-empty 'points' list")
    points = []
    for i, p in enumerate(doc["points"]):
        where = f"points[{i}]"
        if not isinstance(p, dict) or not all(
            isinstance(p.get(k), dict) for k in ("params", "config", "costs", "runs")
        ):
            raise _fail(path, f"{where}: expected params, config, costs and runs mappings")
        runs: dict[int, dict[str, tuple[float, ...]]] = {}
        for seed in seeds:
            run = p["runs"].get(str(seed))
            if not isinstance(run, dict):
                raise _fail(path, f"{where}: no run for seed {seed}")
            curves = {}
            for key in ("pckh", "loss", "time_s", "wall_s"):
                xs = run.get(key)
                if (
                    not isinstance(xs, list)
                    or len(xs) != epochs
                    or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in xs)
                ):
                    raise _fail(path, f"{where}: runs[{seed}].{key}: expected {epochs} finite numbers")
                curves[key] = tuple(float(x) for x in xs)
            runs[seed] = curves
        if not isinstance(p["costs"].get("params"), int):
            raise _fail(path, f"{where}: costs.params: expected an integer")
        points.append(TablePoint(dict(p["params"]), dict(p["config"]), dict(p["costs"]), runs))
    table = BenchTable(str(path), doc["space"], doc.get("preset") or {}, epochs, tuple(seeds), tuple(points))
    by_params = table.by_params()
    if len(by_params) != len(points):
        raise _fail(path, "two points have the same params")
    try:
        grid = grid_trials(SearchSpace.from_dict(doc["space"], source=f"{path} (space)"))
    except ConfigError as exc:
        raise _fail(path, f"space: {exc}") from None
    wanted = {params_key({k: v for k, v in t.items() if k != SEED_PARAM}) for t in grid}
    missing = sorted(wanted - set(by_params))
    if missing:  # a replay may ask for any point of the space
        raise _fail(
            path,
            f"{len(missing)} of the space's {len(wanted)} points have no curves (e.g. {missing[0]}); "
            "finish the grid with `hpo bench-table`",
        )
    return table


@lru_cache(maxsize=4)
def cached_table(path: str) -> BenchTable:
    """:func:`load_table`, once per process and path (a replay reads the table per run)."""
    return load_table(path)


# ----------------------------------------------------------------------------- generate
def generate_table(
    preset: StudyPreset,
    ref: str,
    *,
    workers: int = 1,
    device: str | None = None,
    progress: bool = True,
    echo: Any = print,
) -> Any:
    """Enqueue the grid once and train it to the end (``workers`` local processes on a
    shared storage, else this one); returns the study. Running it again resumes."""
    from hpo.storage import creation_lock, open_storage
    from hpo.study import open_study, run_study
    from hpo.trial_loop import study_counts
    from hpo.workers import check_workers, run_workers

    check_workers(preset.storage, workers)
    trials = grid_trials(preset.search_space())
    total = len(trials)
    storage = open_storage(preset.storage)
    with creation_lock(preset.storage):
        study = open_study(preset, storage=storage)
        enqueued = plan_table(study, trials)
    finished = study_counts(study).finished
    echo(
        f"bench table {preset.name!r}: {total} trials (points x seeds), {finished} finished, {enqueued} "
        "enqueued now"
    )
    if finished >= total:
        return study
    if workers > 1:
        summary = run_workers(preset, ref, workers, n_trials=total - finished, device=device, echo=echo)
        if summary.failed_workers:
            raise ConfigError(
                f"bench table {preset.name!r}: workers {summary.failed_workers} failed; run again to resume"
            )
        return summary.study
    return run_study(preset, total_trials=total, device=device, progress=progress).study


# ----------------------------------------------------------------------------- more seeds
def seeds_preset(ref: str, seeds: Sequence[int], folder: str | Path) -> Path:
    """Write a copy of the bench-table preset ``ref`` (a name or a path) whose space trains
    only the training ``seeds`` (the same designs) into ``folder`` (preset and space YAML) and
    return the preset file, which local workers load by path. Its study is
    ``<name>_seeds_<a>_<b>..``: resumed by running again with the same seeds and storage, and
    never retraining a table's seeds."""
    import yaml

    from hpo.preset import STUDIES_DIR, load_preset, resolve_file

    if (
        not seeds
        or len(set(seeds)) != len(seeds)
        or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in seeds)
    ):
        raise ConfigError(f"--seeds: expected distinct integers >= 0, but got {list(seeds)}")
    preset = load_preset(ref)  # checked as given
    source = (
        Path(ref) if Path(ref).is_file() else resolve_file(ref, near=None, folder=STUDIES_DIR, what="preset")
    )
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    folder = Path(folder)
    space = dict(preset.search_space().doc)
    if SEED_PARAM not in (space.get("params") or {}):
        raise ConfigError(f"{preset.space}: the bench table needs a {SEED_PARAM} param (the training seeds)")
    space["params"] = {**space["params"], SEED_PARAM: {"choices": sorted(seeds)}}
    (folder / "space.yaml").write_text(yaml.safe_dump(space, sort_keys=False), encoding="utf-8")
    n_points = len(grid_trials(SearchSpace.from_dict(space, source=str(folder / "space.yaml"))))
    doc = {
        **raw,
        "name": f"{preset.name}_seeds_{'_'.join(str(x) for x in sorted(seeds))}",
        "space": "space.yaml",
        "budget": {"trials": n_points},
    }
    path = folder / "preset.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def merge_tables(old: Mapping[str, Any], new: Mapping[str, Any], where: str = "table") -> dict[str, Any]:
    """The table document ``old`` with the seeds of ``new`` added to every point. Both must
    have the same designs (the space without its seed param), epochs and points, and no seed
    in common."""

    def designs(doc: Mapping[str, Any]) -> Any:
        params = {k: v for k, v in (doc["space"].get("params") or {}).items() if k != SEED_PARAM}
        return {**doc["space"], "params": params}

    if designs(old) != designs(new) or old["epochs"] != new["epochs"]:
        raise ConfigError(
            f"{where}: the new seeds were trained on another space or schedule than the table's"
        )
    common = set(old["seeds"]) & set(new["seeds"])
    if common:
        raise ConfigError(f"{where}: already holds seeds {sorted(common)}")
    if new.get("missing"):
        raise ConfigError(
            f"{where}: the new seeds are missing {new['missing']} points; run again to finish them"
        )
    by_key = {point_key(p["config"]): p for p in new["points"]}
    points = []
    for p in old["points"]:
        extra = by_key.get(point_key(p["config"]))
        if extra is None:
            raise ConfigError(
                f"{where}: the new seeds have no curves for the point {params_key(p['params'])}"
            )
        points.append({**p, "runs": {**p["runs"], **extra["runs"]}})
    seeds = sorted([*old["seeds"], *new["seeds"]])
    space = {**old["space"], "params": {**old["space"]["params"], SEED_PARAM: {"choices": seeds}}}
    return {
        **old,
        "space": space,
        "seeds": seeds,
        "points": points,
        "study": f"{old.get('study')} + {new.get('study')}",
    }


# ----------------------------------------------------------------------------- transfer
def check_transfer(
    table: BenchTable,
    n: int = 10,
    *,
    seed: int | None = None,
    sample_seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    echo: Any = print,
) -> dict[str, Any]:
    """Retrain ``n`` random points live (training seed ``seed``, by default one the table
    does not hold) and compare their final PCKh with the table's: Spearman over the points,
    and whether each lands within its seeds' range widened by 3 PCKh points."""
    import numpy as np
    import torch
    from scipy.stats import spearmanr

    from hourglass.data.dataset import load_pose_data
    from hourglass.train import train
    from hourglass.train_config import TrainConfig

    if not 3 <= n <= len(table.points):
        raise ConfigError(f"--check-transfer: expected 3 to {len(table.points)} points, but got {n}")
    seed = max(table.seeds) + 1 if seed is None else seed
    picks = np.random.default_rng(sample_seed).choice(len(table.points), size=n, replace=False)
    torch.set_num_threads(1)  # as the table's workers trained
    rows = []
    arrays = None
    for i in sorted(int(x) for x in picks):
        p = table.points[i]
        config = TrainConfig.from_dict({**p.config, "schedule": {**p.config["schedule"], "seed": seed}})
        arrays = arrays if arrays is not None else load_pose_data(config.data)
        live = train(config, arrays, device=device, progress=progress).history[-1].pckh
        finals = [run["pckh"][-1] for run in p.runs.values()]
        lo, hi = min(finals) - 3.0, max(finals) + 3.0
        rows.append(
            {
                "point": i,
                "params": p.params,
                "table_final": finals,
                "live_final": round(live, 3),
                "within": bool(lo <= live <= hi),
            }
        )
        echo(
            f"point {i:3d}: live {live:5.1f}  table {', '.join(f'{x:.1f}' for x in finals)}  "
            f"{'ok' if rows[-1]['within'] else 'OUTSIDE'}"
        )
    rho = float(
        spearmanr([r["live_final"] for r in rows], [float(np.mean(r["table_final"])) for r in rows]).statistic
    )
    return {
        "seed": seed,
        "points": rows,
        "spearman": rho,
        "within": sum(r["within"] for r in rows),
        "n": n,
        "rule": "Spearman(live, table mean) >= 0.8; each live final within [min - 3, max + 3] of the "
        "table's seeds",
    }
