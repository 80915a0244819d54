"""Where presets (``studies/``) and search spaces (``search_spaces/``) are found.

In order, first match wins:

1. the folder named by ``hpo --home DIR`` or ``$HPO_HOME`` (its ``studies/`` and
   ``search_spaces/``), when set;
2. the working directory's ``studies/`` and ``search_spaces/``;
3. the files shipped with the package: read through :mod:`importlib.resources` from the
   packages ``hpo.presets`` and ``hpo.spaces`` (pyproject.toml maps the repository's two
   folders onto them), or straight from those folders in a source checkout.

So a user's own ``studies/quickstart.yaml`` shadows the shipped one, and a wheel installed
anywhere finds its presets from any folder. ``hpo presets`` lists what each one resolves to.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOME_ENV", "STUDIES", "SPACES", "shipped_dir", "search_dirs", "find_named", "listing", "Found"]

HOME_ENV = "HPO_HOME"
STUDIES, SPACES = "studies", "search_spaces"
_PACKAGES = {STUDIES: "hpo.presets", SPACES: "hpo.spaces"}
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def shipped_dir(kind: str) -> Path:
    """The package's own folder of ``kind`` (``studies`` or ``search_spaces``)."""
    if kind not in _PACKAGES:
        raise ValueError(f"kind: expected one of {sorted(_PACKAGES)}, but got {kind!r}")
    # A source checkout (also an editable install) reads its own folders: an editable
    # install of another checkout must not answer for this one.
    if (_SOURCE_ROOT / "pyproject.toml").is_file() and (_SOURCE_ROOT / kind).is_dir():
        return _SOURCE_ROOT / kind
    try:
        data = importlib.resources.files(_PACKAGES[kind])
    except ModuleNotFoundError:
        return _SOURCE_ROOT / kind  # neither: the file-not-found errors name this folder
    if isinstance(data, Path):
        return data
    # a data-only (namespace) package is a MultiplexedPath: its files are real Paths
    return next((p.parent for p in data.iterdir() if isinstance(p, Path)), _SOURCE_ROOT / kind)


def search_dirs(kind: str) -> list[tuple[str, Path]]:
    """``(origin, folder)`` in lookup order, each folder once; origin is ``home``, ``cwd``
    or ``package``. Folders that do not exist are left out (the package's always stays)."""
    shipped = shipped_dir(kind)
    roots = [("home", Path(os.environ[HOME_ENV]))] if os.environ.get(HOME_ENV) else []
    roots.append(("cwd", Path.cwd()))
    out: list[tuple[str, Path]] = []
    seen: set[Path] = set()
    for origin, root in roots:
        folder = root / kind
        if folder.is_dir() and folder.resolve() not in seen:
            out.append(("package" if folder.resolve() == shipped.resolve() else origin, folder))
            seen.add(folder.resolve())
    if shipped.resolve() not in seen:
        out.append(("package", shipped))
    return out


def find_named(kind: str, name: str) -> Path | None:
    """``<name>.yaml`` from the first folder of :func:`search_dirs` that has it."""
    for _, folder in search_dirs(kind):
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class Found:
    name: str
    origin: str  # home | cwd | package
    path: Path
    shadows: tuple[Path, ...]  # the same name further down the lookup order


def listing(kind: str) -> list[Found]:
    """Every ``*.yaml`` of ``kind`` by name: where it resolves and what it shadows."""
    found: dict[str, Found] = {}
    for origin, folder in search_dirs(kind):
        for path in sorted(folder.glob("*.yaml")):
            if path.stem in found:
                f = found[path.stem]
                found[path.stem] = Found(f.name, f.origin, f.path, (*f.shadows, path))
            else:
                found[path.stem] = Found(path.stem, origin, path, ())
    return sorted(found.values(), key=lambda f: f.name)
