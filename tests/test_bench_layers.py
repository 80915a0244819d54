"""hpo.bench's modules import one way (no circle, none hidden in a function), and nothing on the
product's path (hpo run / worker / objective) imports hpo.bench."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "hpo" / "bench"


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(modules imported at module level, modules imported inside functions) by ``path``."""
    top, inner = set(), set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.module == "hpo.bench":
                names = [f"hpo.bench.{a.name}" for a in node.names]
            (top if node.col_offset == 0 else inner).update(names)
    return top, inner


def _bench_graph() -> dict[str, set[str]]:
    graph = {}
    for path in BENCH.glob("*.py"):
        top, inner = _imports(path)
        graph[f"hpo.bench.{path.stem}"] = {m for m in top | inner if m.startswith("hpo.bench.")}
    return graph


def test_bench_modules_import_one_way():
    graph = _bench_graph()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                pytest.fail(f"import circle: {' -> '.join([*stack, node, nxt])}")
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
    assert graph["hpo.bench.replay"] >= {"hpo.bench.settings", "hpo.bench.front"}
    assert "hpo.bench.search" not in graph["hpo.bench.replay"]  # the driver depends on the replay, not back


def test_bench_modules_hide_no_bench_import_in_a_function():
    for path in BENCH.glob("*.py"):
        _, inner = _imports(path)
        assert not {m for m in inner if m.startswith("hpo.bench")}, f"{path.name}: {inner}"


@pytest.mark.parametrize(
    "module",
    [
        "objective",
        "study",
        "workers",
        "trial_loop",
        "pruning",
        "strategy",
        "record",
        "storage",
        "preset",
        "space",
        "report",
        "pareto",
    ],
)
def test_the_product_path_does_not_import_the_benchmark(module):
    path = ROOT / "hpo" / f"{module}.py"
    if not path.is_file():
        pytest.skip(f"hpo/{module}.py moved")
    top, inner = _imports(path)
    assert not {m for m in top | inner if m.startswith("hpo.bench")}
