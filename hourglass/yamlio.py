"""Reading and writing YAML documents safely, with one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hourglass.errors import ConfigError

__all__ = ["load_yaml", "dump_yaml", "deep_merge", "MAX_ALIAS_EXPANSION"]

# How many nodes aliases may add when expanded. A document's anchors are shared when
# parsed, but whatever walks the result (validation, JSON in the study, deep copies) sees
# every copy: nine aliases of nine aliases of ... are a few hundred bytes of YAML and
# billions of nodes ("billion laughs"). Our files use a handful of aliases, if any.
MAX_ALIAS_EXPANSION = 10_000


def _check_aliases(path: Path, root: yaml.Node) -> None:
    """Refuse a document whose aliases expand past :data:`MAX_ALIAS_EXPANSION` nodes (or
    refer to themselves), counting each shared node once per use without expanding it."""
    size: dict[int, int] = {}  # id(node) -> nodes in its expansion
    active: set[int] = set()

    def expand(node: yaml.Node) -> int:
        key = id(node)
        if key in size:
            return size[key]
        if key in active:
            raise ConfigError(f"{path}: an alias refers to its own anchor (a recursive document)")
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1 + sum(expand(child) for child in children)
        active.discard(key)
        size[key] = total
        return total

    expanded = expand(root)
    if expanded - len(size) > MAX_ALIAS_EXPANSION:
        raise ConfigError(
            f"{path}: its aliases expand to {expanded:,} nodes; at most {MAX_ALIAS_EXPANSION:,} "
            "more than the file's own are allowed (an alias bomb?)"
        )


def load_yaml(path: str | Path) -> Any:
    """Parse ``path`` with the safe loader (nothing in a config is ever executed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()  # the node graph: aliases still shared, nothing built yet
        if root is None:
            return None
        _check_aliases(path, root)
        return loader.construct_document(root)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    finally:
        loader.dispose()


def dump_yaml(data: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` on top of ``base``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
