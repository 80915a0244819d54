"""Study presets: one YAML file says everything a study needs, checked before any trial runs.

``studies/<name>.yaml``::

    name: quickstart                      # default: the file name; also the study's name
    objectives: [pckh, params, train_time]  # directions follow from the names
    sampler: {name: tpe, kwargs: {n_startup_trials: 4}}   # tpe|nsga2|nsga3|gp|random|grid|screen_promote
    pruner: {name: mo_halving, min_epochs: 1, eta: 3, min_trials: 4}
    budget: {trials: 12, timeout_s: 600}  # either or both
    data: synthetic:600:64:0              # or a path to a crop-cache .h5
    space: tiny                           # search_spaces/tiny.yaml; or a path (preset dir, repo)
    model: {features: 32}                 # optional: fixed model values merged into the space's base
    schedule: {epochs: 3, batch_size: 16} # merged over the schedule defaults
    storage: null                         # default sqlite:///studies/<name>.db; env:VAR, file:PATH
    workers: 1                            # local worker processes `hpo run` starts (as --workers);
                                          # more than one needs a shared storage (journal, PostgreSQL)
    seed: 0
    warm_start: seed_designs              # optional: enqueue these designs first
    device: auto                          # auto|cpu|cuda|cuda:N|mps
    retrain: {epochs: 20, milestones: [15, 17]}  # optional: what `hpo export` writes to retrain
                                          # with, merged over each trial's own schedule

:func:`load_preset` resolves ``space`` and ``warm_start`` to paths, fills ``storage`` and
the full ``schedule``, loads the space (so a broken space fails here) and checks the
combinations that cannot work: an Optuna single-objective pruner on several objectives, a
grid sampler over a space that is not a finite grid, sampler kwargs the sampler does not take,
a preset schedule value that the space also searches.

The preset it returns is the study's plan: everything after it (the study, the sampler, the
objective, each trial's training config) reads the space, the warm-start designs and the
schedule from it. The space and the designs are loaded and checked once, on first use, and
kept; :meth:`StudyPreset.replace` keeps them across changes that do not touch them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import optuna

from hourglass.errors import ConfigError
from hourglass.extras import require_deploy
from hourglass.train_config import ScheduleConfig, TrainConfig
from hourglass.validate import check_choice, check_float, check_int, from_dict, to_dict
from hourglass.yamlio import deep_merge, load_yaml
from hpo.locations import SPACES, find_named, listing, search_dirs, shipped_dir
from hpo.locations import STUDIES as _STUDIES
from hpo.names import check_study_name
from hpo.pruning import PrunerConfig
from hpo.record import LATENCY, OBJECTIVES
from hpo.screening import ScreenPromoteSampler
from hpo.space import SPACES_DIR, SearchSpace, seed_trials
from hpo.space_param import leaves, schedule_class, schema_defaults
from hpo.storage import default_storage_url, is_sqlite, resolve_storage

__all__ = [
    "StudyPreset",
    "SamplerConfig",
    "BudgetConfig",
    "SAMPLERS",
    "STUDIES_DIR",
    "load_preset",
    "list_presets",
    "find_preset",
    "resolve_file",
    "SAMPLER_DEFAULTS",
    "preset_storage",
    "home_storage",
]

STUDIES_DIR = shipped_dir(_STUDIES)  # the shipped presets (hpo.locations: the user's come first)

SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "nsga3": optuna.samplers.NSGAIIISampler,
    "gp": optuna.samplers.GPSampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
    "screen_promote": ScreenPromoteSampler,  # hpo.screening: pair it with pruner "planned"
}
# TPE over a conditional space: model the params jointly, grouped by which ones co-occur
# (Optuna 5 turns multivariate off by default for multi-objective studies)
SAMPLER_DEFAULTS: dict[str, dict[str, Any]] = {"tpe": {"multivariate": True, "group": True}}
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_SYNTHETIC = re.compile(r"^synthetic:\d+(:\d+(:\d+)?)?$")
_SPACE = ("space",)  # StudyPreset._loaded keys: _SPACE, ("file", ref), ("trials", path)


@dataclass(frozen=True)
class SamplerConfig:
    name: str = "tpe"
    kwargs: Any = None  # extra keyword arguments of the Optuna sampler (seed comes from the preset)

    def __post_init__(self) -> None:
        check_choice("name", self.name, SAMPLERS)
        kwargs = {} if self.kwargs is None else self.kwargs
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"kwargs: expected a mapping of keyword arguments, but got {kwargs!r}")
        cls = SAMPLERS[self.name]
        for reserved in ("seed", "search_space"):
            if reserved in kwargs:
                raise ConfigError(f"kwargs: {reserved!r} is set by the study (seed, space), not here")
        try:
            inspect.signature(cls).bind_partial(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"kwargs: {cls.__name__} does not take them ({exc})") from None
        object.__setattr__(self, "kwargs", MappingProxyType(dict(kwargs)))


MAX_TRIALS = 100_000  # a budget's trials, and --n-trials: a typo of a few zeros is refused
MAX_WORKERS = 256  # a preset's local worker processes (per GPU): a typo, not a plan, beyond this


@dataclass(frozen=True)
class BudgetConfig:
    trials: int | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.trials is None and self.timeout_s is None:
            raise ConfigError("trials: expected a number of trials and/or timeout_s, but got neither")
        if self.trials is not None:
            check_int("trials", self.trials, low=1, high=MAX_TRIALS)
        if self.timeout_s is not None:
            check_float("timeout_s", self.timeout_s, positive=True)


@dataclass(frozen=True)
class StudyPreset:
    """A resolved study preset (see the module docstring for the YAML)."""

    name: str | None = None
    objectives: tuple[str, ...] = ("pckh", "params", "train_time")
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    budget: BudgetConfig = field(default_factory=lambda: BudgetConfig(trials=20))
    data: str = "synthetic:2000:64:0"
    space: str = "tiny"
    model: Any = None  # mapping merged into the space's base model (e.g. seed designs at tiny widths)
    schedule: Any = None  # mapping; becomes the full schedule (defaults + these values)
    storage: str | None = None
    workers: int = 1  # local worker processes `hpo run` starts by default, K on each GPU or K on the CPU
    seed: int = 0
    warm_start: str | None = None
    device: str = "auto"
    retrain: Any = None  # schedule values merged over a trial's schedule by `hpo export` (None: as trained)

    def __post_init__(self) -> None:
        check_study_name(self.name)
        if not self.objectives:
            raise ConfigError(
                "objectives: expected at least one of " + ", ".join(OBJECTIVES) + ", but got []"
            )
        for o in self.objectives:
            check_choice("objectives", o, OBJECTIVES)
        if len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"objectives: expected each at most once, but got {list(self.objectives)}")
        if LATENCY in self.objectives:
            require_deploy(f"objectives: {LATENCY}")
        if len(self.objectives) > 1 and not self.pruner.multi_objective:
            raise ConfigError(
                f"pruner.name: {self.pruner.name!r} needs a single-objective study, but got objectives "
                f"{list(self.objectives)}; use mo_halving or none"
            )
        if (self.sampler.name == "screen_promote") != (self.pruner.name == "planned"):
            raise ConfigError(
                f"pruner.name: sampler screen_promote plans each trial's epochs and needs pruner "
                f"planned (and planned needs it), but got sampler {self.sampler.name!r} with pruner "
                f"{self.pruner.name!r}"
            )
        if not (_SYNTHETIC.match(self.data) or Path(self.data).suffix.lower() in (".h5", ".hdf5")):
            raise ConfigError(
                "data: expected 'synthetic:N[:size[:seed]]' or a path to a .h5 crop cache, but got "
                f"{self.data!r}"
            )
        if not _DEVICE.match(self.device):
            raise ConfigError(f"device: expected auto, cpu, cuda, cuda:N or mps, but got {self.device!r}")
        check_int("seed", self.seed, low=0)
        check_int("workers", self.workers, low=1, high=MAX_WORKERS)
        if self.model is not None:
            if not isinstance(self.model, Mapping):
                raise ConfigError(f"model: expected a mapping of model fields, but got {self.model!r}")
            object.__setattr__(self, "model", MappingProxyType(dict(self.model)))
        schedule = {} if self.schedule is None else self.schedule
        if not isinstance(schedule, Mapping):
            raise ConfigError(f"schedule: expected a mapping, but got {schedule!r}")
        full = from_dict(
            schedule_class(), deep_merge(schema_defaults()["schedule"], dict(schedule)), "schedule"
        )
        object.__setattr__(self, "schedule", MappingProxyType(to_dict(full)))
        if self.retrain is not None:
            if not isinstance(self.retrain, Mapping):
                raise ConfigError(f"retrain: expected a mapping of schedule values, but got {self.retrain!r}")
            from_dict(schedule_class(), deep_merge(dict(self.schedule), dict(self.retrain)), "retrain")
            object.__setattr__(self, "retrain", MappingProxyType(dict(self.retrain)))
        if self.storage is None:
            object.__setattr__(self, "storage", default_storage_url(self.name))
        elif isinstance(self.storage, str):
            object.__setattr__(self, "storage", resolve_storage(self.storage))
        # not fields (so not in to_dict, ==, repr): the typed schedule, and what search_space()
        # and warm_start_trials() loaded, kept for the next call
        object.__setattr__(self, "_train_schedule", full)
        object.__setattr__(self, "_loaded", {})

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[o].direction for o in self.objectives]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def train_schedule(self) -> ScheduleConfig:
        """The full schedule, typed (``schedule`` is its plain-data form, as stored in the study)."""
        return self._train_schedule

    def train_config(self, suggested: Mapping[str, Any], where: str = "") -> TrainConfig:
        """What a trial trains: the ``model`` its space suggested, this schedule with the
        schedule values the space suggested on top (a space may search ``schedule.lr``), and
        this data. The one place the preset's and the space's schedules meet."""
        schedule = deep_merge(dict(self.schedule), suggested.get("schedule", {}))
        return TrainConfig.from_dict(
            {"model": suggested["model"], "schedule": schedule, "data": self.data}, where=where
        )

    def search_space(self) -> SearchSpace:
        """The space with ``model`` merged into its base: loaded and checked on the first
        call, then the same object (a study, its sampler and its objective share one)."""
        if _SPACE not in self._loaded:
            space = SearchSpace.load(self.space)
            self._loaded[_SPACE] = space.rebased({"model": dict(self.model)}) if self.model else space
        return self._loaded[_SPACE]

    def warm_start_file(self, designs: str | None = None) -> Path | None:
        """The designs file to enqueue first: ``designs`` (a name in search_spaces/ or a path,
        e.g. ``--warm-start``) or else ``warm_start``; None without either. Resolved once
        (:func:`load_preset` resolves ``warm_start`` already)."""
        ref = designs or self.warm_start
        if not ref:
            return None
        if ("file", ref) not in self._loaded:
            self._loaded["file", ref] = resolve_file(
                str(ref), near=None, folder=SPACES_DIR, what="warm_start"
            )
        return self._loaded["file", ref]

    def warm_start_trials(self, designs: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """``(name, params)`` of each design of :meth:`warm_start_file` that the space can
        express (:func:`hpo.space.seed_trials`), mapped once."""
        path = self.warm_start_file(designs)
        if path is None:
            return []
        if ("trials", path) not in self._loaded:
            self._loaded["trials", path] = seed_trials(self.search_space(), path)
        return list(self._loaded["trials", path])

    def replace(self, **changes: Any) -> StudyPreset:
        """``dataclasses.replace`` that keeps what was loaded: the resolved designs files,
        and the space and its warm-start trials unless ``space`` or ``model`` change.
        (``dataclasses.replace`` works too, and loads them again when asked.)"""
        new = replace(self, **changes)
        same_space = (new.space, new.model) == (self.space, self.model)
        new._loaded.update((k, v) for k, v in self._loaded.items() if same_space or k[0] == "file")
        return new

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def resolve_file(ref: str, *, near: Path | None, folder: Path, what: str) -> Path:
    """``ref`` as a path (absolute, next to ``near``, from the working directory) or as a
    bare name looked up like a preset's space (``tiny`` -> ``search_spaces/tiny.yaml`` of
    $HPO_HOME, the working directory, then the package: :mod:`hpo.locations`). ``folder``
    is the package's folder of that kind, searched last."""
    path = Path(ref)
    dirs = [d for _, d in search_dirs(SPACES)] if folder.resolve() == SPACES_DIR.resolve() else [folder]
    # "search_spaces/tiny.yaml" (written from a checkout's root) names the shipped file too
    inner = Path(*path.parts[1:]) if len(path.parts) > 1 and path.parts[0] == SPACES else None
    candidates = (
        [path]
        if path.is_absolute()
        else [
            *([near / path] if near else []),
            path,
            *(c for d in dirs for c in (d / path, d / f"{ref}.yaml", *([d / inner] if inner else []))),
        ]
    )
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise ConfigError(
        f"{what}: no such file {ref!r} (looked in: {', '.join(str(c) for c in dict.fromkeys(candidates))})"
    )


def preset_storage(study_name: str) -> str:
    """Where study ``study_name`` lives when no ``--storage``/``HPO_STORAGE`` says: the
    ``storage:`` of its preset in ``studies/`` if there is one, else the default SQLite file."""
    check_study_name(study_name, "study name")
    path = find_named(_STUDIES, study_name)
    doc = load_yaml(path) if path is not None else None
    if isinstance(doc, Mapping) and isinstance(doc.get("storage"), str):
        return resolve_storage(doc["storage"], f"{path}: storage")
    return default_storage_url(study_name)


def home_storage(study_name: str) -> str | None:
    """:func:`preset_storage`, or None where the preset's ``storage:`` cannot be resolved
    here (an unset ``env:VAR``): the storage that results commands open for a bare study
    name, so that a command can say when no ``--storage`` is needed."""
    try:
        return preset_storage(study_name)
    except ConfigError:
        return None


def list_presets() -> list[str]:
    """Preset names, the user's and the shipped ones (``hpo presets`` says which is which)."""
    return [f.name for f in listing(_STUDIES)]


def find_preset(ref: str) -> Path | None:
    """The preset file ``ref`` names: an existing YAML path, else ``<ref>.yaml`` in the
    first folder that has it (:func:`hpo.locations.search_dirs`); None if neither."""
    path = Path(ref)
    if path.is_file():
        return path
    if path.suffix in (".yaml", ".yml") or "/" in ref:
        return None
    return find_named(_STUDIES, ref)


def load_preset(name_or_path: str | Path) -> StudyPreset:
    """A preset by name (``quickstart`` -> ``studies/quickstart.yaml``, the user's first)
    or path, fully checked."""
    ref = str(name_or_path)
    path = find_preset(ref)
    if path is None:
        if Path(ref).suffix in (".yaml", ".yml") or "/" in ref:
            raise ConfigError(f"preset {ref!r}: no such file")
        where = ", ".join(str(d) for _, d in search_dirs(_STUDIES))
        raise ConfigError(
            f"preset {ref!r}: no such preset in {where} (found: {', '.join(list_presets()) or 'none'})"
        )
    doc = load_yaml(path)
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{path}: expected a mapping of preset fields, but got {doc!r}")
    doc = {"name": path.stem, **doc}
    try:
        preset = from_dict(StudyPreset, doc)
        space_file = resolve_file(preset.space, near=path.parent, folder=SPACES_DIR, what="space")
        warm = (
            resolve_file(preset.warm_start, near=path.parent, folder=SPACES_DIR, what="warm_start")
            if preset.warm_start
            else None
        )
        preset = replace(preset, space=str(space_file), warm_start=str(warm) if warm else None)
        if warm:
            preset._loaded["file", preset.warm_start] = warm  # resolved: warm_start_file need not again
        space = preset.search_space()
        _check_against_space(preset, doc.get("schedule") or {}, space)
        if preset.workers > 1 and is_sqlite(preset.storage):
            raise ConfigError(
                f"workers: {preset.workers} processes share one study, but SQLite ({preset.storage}) takes "
                f"one at a time; set storage: journal://studies/{preset.name}.log (or a PostgreSQL URL)"
            )
    except ConfigError as exc:
        raise ConfigError(f"{path}: {str(exc).removeprefix('StudyPreset: ')}") from None
    return preset


def _check_against_space(preset: StudyPreset, given_schedule: Mapping[str, Any], space: SearchSpace) -> None:
    searched = {p.path for p in space.params if p.path is not None}
    for key in given_schedule:
        if f"schedule.{key}" in searched:
            raise ConfigError(
                f"schedule.{key}: the space {space.source} searches it; remove it from the preset"
            )
    if preset.sampler.name == "grid":
        space.grid()  # raises if the space is not a finite, unconditional grid
    for path in leaves(dict(space.base)):
        if path.startswith("schedule.") and path.removeprefix("schedule.") in given_schedule:
            raise ConfigError(f"{path}: fixed both in the preset and in the space {space.source}; keep one")
