"""Search spaces: a YAML file of fixed ``base`` values and Optuna ``params``, checked on load.

A trial's resolved config is ``{"model": <HourglassConfig dict>, "schedule": <schedule
overrides>}``; a space addresses it by dotted path. The format::

    description: free text
    base:                         # fixed values, merged under every trial's suggestions
      model: {stacks: 1, features: 16, depth: 2, input_size: 64, stem: {channels: 8}}
      schedule: {}                # usually empty: fixed schedule values belong to the preset
    params:                       # asked in this order; the key is the Optuna param name
      model.block.name: {choices: [bottleneck, conv2, multidilated]}
      model.block.dilation: {choices: [1, 2]}       # block knobs: see "Conditions" below
      model.block.separable: {choices: [none, mid, all]}
      model.block.rates: {choices: [[1, 2], [1, 2, 3, 4]]}
      model.features: {type: int, low: 16, high: 32, step: 16, default: 32}
      model.stacks: {choices: [1, 2]}
      model.stack_weights:                          # list-valued choices, one condition
        when: {model.stacks: 2}
        choices: [null, [0.3, 0.7], [0.7, 0.3]]
      schedule.lr: {type: float, low: 3.0e-4, high: 3.0e-3, log: true, default: 1.0e-3}

Parameter keys: ``choices`` (categorical; ``type: categorical`` optional), or ``type: int``
with ``low``, ``high``, optional ``step`` (default 1) and ``log``, or ``type: float`` with
``low``, ``high``, optional ``log`` / ``step``. ``path`` (default: the key) is the config
path it sets, so two params can set one path under different ``when`` conditions.
``default`` is the value used for warm starts when a design does not say (default: the
first choice, or ``low``). Write floats with a dot (``1.0e-3``): YAML reads ``1e-3`` as a string.

Conditions. ``when: {path: value or [values]}`` asks a param only when every listed path,
as resolved so far (base + earlier params), has one of the values (wrap a list value in a
list: ``[[1, 2]]``); the path must not be set by a later param. A condition on a schedule
path sees the space's own base and params, not the preset's schedule. Block knobs are
conditional by themselves, derived from the block registry (:data:`hourglass.blocks.BLOCKS`):
``model.block.dilation``/``separable``/``rates`` are asked only for blocks whose spec has the
knob, with only the choices that block accepts. When those choices differ between blocks the
param is split per block, named ``model.block.separable@conv2`` (Optuna requires one fixed
choice list per name). A knob a trial does not ask keeps the base value if the block accepts
it, else the ``BlockConfig`` default.

Bundles. ``choices`` may be a mapping of labels to nested overrides (``{model: {...}}``):
the param then picks a label and merges its overrides. A designs file (``base`` + ``designs``,
see :mod:`hourglass.designs`) loads as a space with one bundle param ``design``.

Lists travel through Optuna as JSON strings (``"[0.3, 0.7]"``; categoricals must be
primitives) and are decoded before they reach the config. Loading checks every key, type,
range and path, then enumerates the model combinations the space can produce (sampling
when there are too many) so an impossible one fails at load, not hours into a study.
"""

from __future__ import annotations

import copy
import difflib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from hourglass.blocks import BLOCKS
from hourglass.config import HourglassConfig
from hourglass.designs import design_overrides
from hourglass.errors import ConfigError
from hourglass.stems import STEMS
from hourglass.validate import check_choice, from_dict
from hourglass.validate import convert as check_type  # the one type checker; see from_dict
from hourglass.yamlio import deep_merge, load_yaml
from hpo.locations import SPACES, shipped_dir
from hpo.space_check import check_combinations
from hpo.space_param import (
    BLOCK_KNOBS,
    Param,
    encode_choice,
    fit_block_knobs,
    knob_accepts,
    knob_applies,
    leaves,
    same_value,
    schedule_class,
    schema_defaults,
    schema_types,
    set_path,
)

__all__ = ["SearchSpace", "SPACES_DIR", "seed_trials", "plan_seed_trials", "SeedPlan"]

log = logging.getLogger(__name__)

SPACES_DIR = shipped_dir(SPACES)  # the shipped spaces (hpo.locations: the user's come first)
_BLOCK_NAME = "model.block.name"


@dataclass(frozen=True)
class _ParamDoc:
    """One entry of ``params`` as written (types checked by ``from_dict``)."""

    type: str | None = None
    choices: Any = None
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = None
    log: bool = False
    when: Any = None
    path: str | None = None
    default: Any = None


def _suggest_path(path: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(path, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else " (expected model.<field> or schedule.<field>)"


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space. Build with :meth:`load`; read-only afterwards."""

    source: str
    base: Mapping[str, Any]  # {"model": full model dict, "schedule": fixed overrides}
    params: tuple[Param, ...]
    description: str = ""
    doc: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        """A space file, or a designs file (``base`` + ``designs``) as a one-param space."""
        raw = load_yaml(path)
        if isinstance(raw, Mapping) and "designs" in raw and "params" not in raw:
            return cls.from_designs(path)
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_designs(cls, path: str | Path) -> SearchSpace:
        """The named designs of ``path`` as one categorical param ``design``."""
        base, designs = design_overrides(path)
        doc = {
            "description": f"the named designs of {path}",
            "base": {"model": base},
            "params": {"design": {"choices": {name: {"model": over} for name, over in designs.items()}}},
        }
        return cls.from_dict(doc, source=str(path))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<space>") -> SearchSpace:
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{source}: expected a mapping with keys 'base' and 'params', but got {doc!r}")
        unknown = [k for k in doc if k not in ("description", "base", "params")]
        if unknown:
            raise ConfigError(
                f"{source}: unknown key {unknown[0]!r} (allowed: 'description', 'base', 'params')"
            )
        types = schema_types()
        base = _load_base(doc.get("base"), source)
        params_doc = doc.get("params")
        if not isinstance(params_doc, Mapping) or not params_doc:
            raise ConfigError(
                f"{source}: params: expected a non-empty mapping of name -> parameter, but got {params_doc!r}"
            )
        params: list[Param] = []
        for name, raw in params_doc.items():
            params.extend(_expand_knob(_load_param(str(name), raw, source, types), params, base, source))
        _check_order(params, source)
        space = cls(
            source,
            MappingProxyType(base),
            tuple(params),
            str(doc.get("description") or ""),
            MappingProxyType(dict(doc)),
        )
        check_combinations(space.params, base, source)
        return space

    def rebased(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """The same params over a base with ``overrides`` (``{"model": {...}}``) merged in,
        e.g. the seed designs at tiny widths. Fixing a path the space searches is an error."""
        searched = {p for prm in self.params for p in _writes(prm)}
        for path in leaves(overrides):
            if path in searched:
                raise ConfigError(
                    f"{self.source}: {path} is searched by the space, so it cannot also be fixed in the base"
                )
        doc = deep_merge(dict(self.doc), {"base": deep_merge(self.doc.get("base") or {}, dict(overrides))})
        return SearchSpace.from_dict(doc, source=self.source)

    # ----------------------------------------------------------------- Optuna
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every param's Optuna distribution (conditional ones included)."""
        return {p.name: p.distribution() for p in self.params}

    def grid(self) -> dict[str, list[Any]]:
        """The search space for ``optuna.samplers.GridSampler``: finite and unconditional only."""
        grid: dict[str, list[Any]] = {}
        for p in self.params:
            if p.when:
                conds = ", ".join(path for path, _ in p.when)
                raise ConfigError(
                    f"{self.source}: the grid sampler needs unconditional params, but {p.name} is asked only "
                    f"depending on {conds}; use a designs space (e.g. seed_designs) or another sampler"
                )
            if p.kind == "float":
                raise ConfigError(
                    f"{self.source}: the grid sampler needs a finite space, but {p.name} is a float range"
                )
            grid[p.name] = [p.encode(v) for v in p.grid_values(limit=10**6)]
        return grid

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's resolved config ``{"model": ..., "schedule": ...}`` (model validated)."""
        config, _ = self._resolve(lambda p, cfg: p.suggest(trial))
        try:
            model = HourglassConfig.from_dict(config["model"], where=f"{self.source}: model")
        except ConfigError as exc:
            raise ConfigError(f"{exc} (trial {trial.number} params {trial.params})") from None
        _check_schedule(config["schedule"], f"{self.source}: schedule")
        return {"model": model.to_dict(), "schedule": config["schedule"]}

    def suggest_params(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ask the trial for its params as :meth:`suggest` does, without building the model
        config: a replay against a recorded table only needs the params."""
        return self._resolve(lambda p, cfg: p.suggest(trial))[1]

    def params_for(
        self, config: Mapping[str, Any], *, prefer: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The Optuna params (encoded) under which :meth:`suggest` reproduces ``config``.

        ``config`` may be partial: every leaf it has must come out as given (else a
        ConfigError says which and why); params it does not decide take the value in
        ``prefer`` where the space can express it, else their ``default``. Schedule leaves
        that the space neither fixes nor searches are left to the preset and not compared.
        """
        types = schema_types()
        required, preferred = leaves(config), leaves(prefer or {})
        for path in required:
            if path not in types:
                raise ConfigError(
                    f"{self.source}: cannot express {path}: not a config path{_suggest_path(path, types)}"
                )

        def choose(p: Param, cfg: Mapping[str, Any]) -> Any:
            if p.path is None:
                return _pick_bundle(p, required, preferred, self.source)
            if p.path in required:
                value = required[p.path]
                if not p.accepts(value):
                    raise ConfigError(
                        f"{self.source}: cannot express {p.path}={value!r}: {p.name} takes {_describe(p)}"
                    )
                return _canonical(p, value)
            if p.path in preferred and p.accepts(preferred[p.path]):
                return _canonical(p, preferred[p.path])
            return p.default

        resolved, params = self._resolve(choose)
        model = HourglassConfig.from_dict(resolved["model"], where=f"{self.source}: model")
        got = leaves({"model": model.to_dict(), "schedule": resolved["schedule"]})
        searched = {path for p in self.params for path in _writes(p)}
        for path, want in required.items():
            if path.startswith("schedule.") and path not in got and path not in searched:
                continue  # the space leaves it to the preset
            if _irrelevant_knob(path, got):
                continue
            if path not in got or not same_value(got[path], want):
                how = "searched but not asked here" if path in searched else "fixed at"
                raise ConfigError(
                    f"{self.source}: cannot express {path}={want!r}: the space has it {how} {got.get(path)!r}"
                )
        return params

    # ----------------------------------------------------------------- internals
    def _resolve(
        self, choose: Callable[[Param, Mapping[str, Any]], Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Walk the params in order: ask the active ones via ``choose``, apply their values."""
        config = copy.deepcopy({"model": dict(self.base["model"]), "schedule": dict(self.base["schedule"])})
        params: dict[str, Any] = {}
        written: set[str] = set()
        for p in self.params:
            if not p.active(config):
                continue
            value = choose(p, config)
            params[p.name] = p.encode(value)
            for path, v in p.overrides(value).items():
                set_path(config, path, copy.deepcopy(v))
                written.add(path)
        fit_block_knobs(config["model"], written)
        return config, params


def _knob_of(path: str | None) -> str | None:
    """``"dilation"`` for ``model.block.dilation``; None for paths that are not block knobs."""
    if path is None or not path.startswith("model.block."):
        return None
    knob = path.removeprefix("model.block.")
    return knob if knob in BLOCK_KNOBS else None


def _irrelevant_knob(path: str, got: Mapping[str, Any]) -> bool:
    """A knob the chosen block does not have (a bottleneck's rates) is not compared."""
    knob = _knob_of(path)
    return knob is not None and not knob_applies(got[_BLOCK_NAME], knob)


def _writes(p: Param) -> Iterator[str]:
    if p.path is not None:
        yield p.path
    else:
        for overrides in (p.bundles or {}).values():
            yield from leaves(overrides)


def _describe(p: Param) -> str:
    if p.kind == "categorical":
        return "one of " + ", ".join(repr(c) for c in p.choices)
    step = f" step {p.step}" if p.step else ""
    return f"{'integers' if p.kind == 'int' else 'numbers'} in [{p.low}, {p.high}]{step}"


def _canonical(p: Param, value: Any) -> Any:
    if p.kind == "categorical":
        return next(c for c in p.choices if same_value(c, value))
    return int(value) if p.kind == "int" else float(value)


def _pick_bundle(p: Param, required: Mapping[str, Any], preferred: Mapping[str, Any], source: str) -> str:
    """The label that explains most of ``required`` without contradicting it, then the one
    that contradicts ``preferred`` least, then the first."""
    best: tuple[tuple[int, int], str] | None = None
    for label in p.choices:
        over = leaves(p.bundles[label])  # type: ignore[index]
        if any(path in required and not same_value(required[path], v) for path, v in over.items()):
            continue
        explained = sum(path in required for path in over)
        conflicts = sum(path in preferred and not same_value(preferred[path], v) for path, v in over.items())
        score = (-explained, conflicts)
        if best is None or score < best[0]:
            best = (score, label)
    if best is None:
        raise ConfigError(f"{source}: cannot express the config: every choice of {p.name} contradicts it")
    return best[1]


def _check_schedule(schedule: Mapping[str, Any], where: str) -> None:
    from_dict(schedule_class(), deep_merge(schema_defaults()["schedule"], dict(schedule)), where)


def _load_base(base: Any, source: str) -> dict[str, Any]:
    if base is None:
        base = {}
    if not isinstance(base, Mapping):
        raise ConfigError(
            f"{source}: base: expected a mapping with keys 'model' and 'schedule', but got {base!r}"
        )
    unknown = [k for k in base if k not in ("model", "schedule")]
    if unknown:
        raise ConfigError(f"{source}: base: unknown key {unknown[0]!r} (allowed: 'model', 'schedule')")
    model = base.get("model") or {}
    schedule = base.get("schedule") or {}
    if not isinstance(schedule, Mapping):
        raise ConfigError(f"{source}: base.schedule: expected a mapping, but got {schedule!r}")
    full = HourglassConfig.from_dict(
        deep_merge(schema_defaults()["model"], model) if isinstance(model, Mapping) else model,
        where=f"{source}: base.model",
    )
    _check_schedule(schedule, f"{source}: base.schedule")
    return {"model": full.to_dict(), "schedule": copy.deepcopy(dict(schedule))}


# Paths whose values name a registry entry: a typo there is caught on load, with the names
# allowed, before the block knobs are derived from the registry.
_REGISTRIES: Mapping[str, Mapping[str, Any]] = {_BLOCK_NAME: BLOCKS, "model.stem.name": STEMS}


def _check_value(types: Mapping[str, Any], path: str, value: Any, where: str) -> Any:
    value = check_type(types[path], value, where)
    if path in _REGISTRIES:
        check_choice(where, value, _REGISTRIES[path])
    return value


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_param(name: str, raw: Any, source: str, types: Mapping[str, Any]) -> Param:
    where = f"{source}: params.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping like {{choices: [...]}} or {{type: int, low: .., high: ..}}, but "
            f"got {raw!r}"
        )
    for key in ("low", "high", "step"):
        if isinstance(raw.get(key), str) and _looks_numeric(raw[key]):
            raise ConfigError(
                f"{where}.{key}: expected a number, but got the string {raw[key]!r} "
                "(YAML reads 1e-3 as text: write 1.0e-3)"
            )
    d = from_dict(_ParamDoc, raw, where)
    bundle = isinstance(d.choices, Mapping)
    kind = d.type or ("categorical" if d.choices is not None else None)
    if kind is None:
        raise ConfigError(f"{where}: expected 'choices' or 'type: int' / 'type: float' with low and high")
    check_choice(f"{where}.type", kind, ("categorical", "int", "float"))
    path = None if bundle else (d.path or name)
    if path is not None and path not in types:
        raise ConfigError(f"{where}: {path!r} is not a config path{_suggest_path(path, types)}")
    when = _load_when(d.when, types, where)
    if kind == "categorical":
        if d.low is not None or d.high is not None or d.step is not None or d.log:
            raise ConfigError(f"{where}: low/high/step/log apply to int and float params only")
        p = _categorical(name, path, d.choices, where, types, when)
    else:
        p = _numeric(name, path, kind, d, where, types, when)
    if "default" in raw:
        if not p.accepts(d.default):
            raise ConfigError(f"{where}.default: expected {_describe(p)}, but got {d.default!r}")
        return replace(p, default=_canonical(p, d.default))
    return p


def _categorical(
    name: str,
    path: str | None,
    choices: Any,
    where: str,
    types: Mapping[str, Any],
    when: tuple[tuple[str, tuple[Any, ...]], ...],
) -> Param:
    if isinstance(choices, Mapping):
        if not choices:
            raise ConfigError(f"{where}.choices: expected at least one labelled choice, but got {{}}")
        bundles: dict[str, Mapping[str, Any]] = {}
        for label, over in choices.items():
            over = over or {}
            if not isinstance(over, Mapping):
                raise ConfigError(
                    f"{where}.choices.{label}: expected a mapping of overrides, but got {over!r}"
                )
            for leaf, value in leaves(over).items():
                if leaf not in types:
                    raise ConfigError(
                        f"{where}.choices.{label}: {leaf!r} is not a config path{_suggest_path(leaf, types)}"
                    )
                _check_value(types, leaf, value, f"{where}.choices.{label}.{leaf}")
            bundles[str(label)] = MappingProxyType(copy.deepcopy(dict(over)))
        labels = tuple(bundles)
        return Param(
            name, None, "categorical", labels, MappingProxyType(bundles), when=when, default=labels[0]
        )
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{where}.choices: expected a non-empty list, but got {choices!r}")
    seen: dict[Any, Any] = {}
    for i, c in enumerate(choices):
        _check_value(types, path, c, f"{where}.choices[{i}]")
        key = encode_choice(c)
        if key in seen and same_value(seen[key], c):
            raise ConfigError(f"{where}.choices: {c!r} is listed twice")
        seen[key] = c
    return Param(
        name, path, "categorical", tuple(copy.deepcopy(choices)), when=when, default=copy.deepcopy(choices[0])
    )


def _numeric(
    name: str,
    path: str,
    kind: str,
    d: _ParamDoc,
    where: str,
    types: Mapping[str, Any],
    when: tuple[tuple[str, tuple[Any, ...]], ...],
) -> Param:
    if d.choices is not None:
        raise ConfigError(f"{where}: 'choices' and 'type: {kind}' exclude each other")
    if d.low is None or d.high is None:
        raise ConfigError(f"{where}: a {kind} param needs low and high")
    for key in ("low", "high", "step"):
        value = getattr(d, key)
        if kind == "int" and value is not None and not isinstance(value, int):
            raise ConfigError(f"{where}.{key}: expected an integer, but got {value!r}")
    if d.low > d.high:
        raise ConfigError(f"{where}: expected low <= high, but got low={d.low!r} high={d.high!r}")
    if d.step is not None and d.step <= 0:
        raise ConfigError(f"{where}.step: expected a number > 0, but got {d.step!r}")
    if d.log and d.step not in (None, 1):
        raise ConfigError(f"{where}: log and step exclude each other (Optuna), but got step={d.step!r}")
    if d.log and d.low <= 0:
        raise ConfigError(f"{where}.low: a log range needs low > 0, but got {d.low!r}")
    for key in ("low", "high"):
        _check_value(types, path, getattr(d, key), f"{where}.{key}")
    low, high = (d.low, d.high) if kind == "int" else (float(d.low), float(d.high))
    step = None if (kind == "float" and d.step is None) or d.log else (d.step or 1)
    return Param(name, path, kind, low=low, high=high, step=step, log=d.log, when=when, default=low)


def _load_when(when: Any, types: Mapping[str, Any], where: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if when is None:
        return ()
    if not isinstance(when, Mapping) or not when:
        raise ConfigError(f"{where}.when: expected a mapping of path -> value or [values], but got {when!r}")
    out = []
    for path, allowed in when.items():
        if path not in types:
            raise ConfigError(f"{where}.when: {path!r} is not a config path{_suggest_path(path, types)}")
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        if not values:
            raise ConfigError(f"{where}.when.{path}: expected at least one value, but got []")
        out.append((path, values))
    return tuple(out)


def _possible_blocks(before: list[Param], base: Mapping[str, Any]) -> list[str]:
    names = [base["model"]["block"]["name"]]
    for p in before:
        if p.path == _BLOCK_NAME:
            names += list(p.choices)
        elif p.path is None:
            names += [leaves(o)[_BLOCK_NAME] for o in p.bundles.values() if _BLOCK_NAME in leaves(o)]  # type: ignore[union-attr]
    return list(dict.fromkeys(names))


def _expand_knob(p: Param, before: list[Param], base: Mapping[str, Any], source: str) -> list[Param]:
    """A block knob becomes one param, or one per block when the blocks accept different
    values; which blocks have the knob and which values they take comes from the registry."""
    knob = _knob_of(p.path)
    if knob is None:
        return [p]
    where = f"{source}: params.{p.name}"
    if p.kind != "categorical":
        raise ConfigError(f"{where}: expected choices (block knobs are categorical), but got type {p.kind!r}")
    blocks = _possible_blocks(before, base)
    per_block = {
        b: tuple(c for c in p.choices if knob_accepts(b, knob, c)) for b in blocks if knob_applies(b, knob)
    }
    per_block = {b: cs for b, cs in per_block.items() if cs}
    for c in p.choices:
        if not any(any(same_value(c, x) for x in cs) for cs in per_block.values()):
            raise ConfigError(
                f"{where}.choices: {c!r} fits none of the blocks the space can pick ({', '.join(blocks)}); "
                "each block's registry spec says which knobs and values it takes"
            )

    def one(name: str, choices: tuple[Any, ...], cond: tuple[tuple[str, tuple[Any, ...]], ...]) -> Param:
        default = p.default if any(same_value(p.default, c) for c in choices) else choices[0]
        return replace(p, name=name, choices=choices, when=p.when + cond, default=default)

    if len({tuple(map(encode_choice, cs)) for cs in per_block.values()}) == 1:
        cond = () if set(per_block) == set(blocks) else ((_BLOCK_NAME, tuple(per_block)),)
        return [one(p.name, next(iter(per_block.values())), cond)]
    return [one(f"{p.name}@{b}", cs, ((_BLOCK_NAME, (b,)),)) for b, cs in per_block.items()]


def _check_order(params: list[Param], source: str) -> None:
    """Conditions and block knobs read what earlier params wrote, never later ones."""
    names = set()
    unconditional: dict[str, str] = {}
    for p in params:
        for path in set(_writes(p)) if not p.when else ():
            if path in unconditional:
                raise ConfigError(
                    f"{source}: params.{p.name} and params.{unconditional[path]} both set {path}; "
                    "give them exclusive 'when' conditions"
                )
            unconditional[path] = p.name
    for i, p in enumerate(params):
        if p.name in names:
            raise ConfigError(f"{source}: params: {p.name!r} is defined twice")
        names.add(p.name)
        reads = [path for path, _ in p.when]
        if _knob_of(p.path) is not None:
            reads.append(_BLOCK_NAME)
        for later in params[i + 1 :]:
            clash = set(reads) & set(_writes(later))
            if clash:
                raise ConfigError(
                    f"{source}: params.{p.name} depends on {sorted(clash)[0]}, which params.{later.name} "
                    "sets "
                    "after it; list that param first"
                )


# ------------------------------------------------------------------------- warm starts
@dataclass(frozen=True)
class SeedPlan:
    trials: list[tuple[str, dict[str, Any]]]  # (design name, params) to enqueue
    skipped: list[tuple[str, str]]  # (design name, why the space cannot express it)


def plan_seed_trials(space: SearchSpace, designs_path: str | Path) -> SeedPlan:
    """Map each named design onto ``space``'s own params.

    What a design changes (its overrides) must come out exactly; what it inherits from its
    file's ``base`` (e.g. 256 features) is used where the space can express it and otherwise
    left to the space (a tiny space keeps its tiny widths). A design the space cannot
    express, or one that maps onto the same params as an earlier one, is skipped.
    """
    base, designs = design_overrides(designs_path)
    trials: list[tuple[str, dict[str, Any]]] = []
    skipped: list[tuple[str, str]] = []
    for name, over in designs.items():
        try:
            params = space.params_for({"model": over}, prefer={"model": base})
        except ConfigError as exc:
            skipped.append((name, str(exc).removeprefix(f"{space.source}: ")))
            continue
        twin = next((n for n, p in trials if p == params), None)
        if twin is not None:
            skipped.append((name, f"same params as {twin}"))
        else:
            trials.append((name, params))
    return SeedPlan(trials, skipped)


def seed_trials(space: SearchSpace, designs_path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """``(name, params)`` for ``study.enqueue_trial(params, user_attrs={"design": name})``;
    designs the space cannot express are logged and left out."""
    plan = plan_seed_trials(space, designs_path)
    for name, reason in plan.skipped:
        log.warning("warm start: design %s skipped: %s", name, reason)
    return plan.trials
