"""The Pareto table as a terminal shows it: columns chosen to fit the width, nothing cut.

A row (:func:`hpo.pareto.trial_rows`) holds the objectives, measured costs and the value of
every searched config path (``model.block.name``, ``schedule.lr`` ...). The table always
shows the trial number and the objectives, then ``design`` (only where a row has one),
then the searched paths whose values differ among the rows shown, then the costs
(GFLOPs, layers, epochs, ops/step), as many as the width allows. Searched values that do
not get a column of their own go, as ``name=value``, into one last ``other`` column that
wraps between values, so every knob that tells two rows apart is on screen. Cells are
never shortened: a column that does not fit is left out and named under the table
(``--wide`` shows all, ``--columns`` picks; ``--csv``/``--json`` always have every one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from hourglass.errors import ConfigError
from hpo.record import LATENCY, model_label

__all__ = ["Column", "table_columns", "render_pareto_table", "format_value"]

# Short headers of the searched paths, in the order they are given a column.
SHORT_NAMES = {
    "model.block.name": "block",
    "model.stem.name": "stem",
    "model.features": "feat",
    "model.stacks": "stacks",
    "model.block.separable": "sep",
    "model.block.dilation": "dil",
    "model.block.skip": "skip",
    "schedule.lr": "lr",
    "model.stack_weights": "weights",
    "model.block.rates": "rates",
    "model.depth": "depth",
    "model.stem.channels": "stem ch",
    "schedule.batch_size": "batch",
}
OBJECTIVE_HEADERS = {
    "pckh": ("PCKh", ".2f"),
    "params": ("params", ","),
    "train_time": ("train s", ",.1f"),
    LATENCY: ("lat ms", ",.2f"),
}
COSTS = (
    ("epochs", "epochs", ","),
    ("flops", "GFLOPs", ".3f"),
    ("layers", "layers", ","),
    ("ops_per_step", "ops/step", ","),
)
TRAIN_TIME_NOTE = "charged training time (fast step x steps), not the wall time"
OTHER_MIN_WIDTH = 14  # the "other" column is given at least this much room when it is needed
_PAD = 2  # rich pads each cell with one space on either side
_SEP = 1  # one vertical line between two columns (no outer edge)


def format_value(value: Any) -> str:
    """A config value in few characters: ``true``, ``0.00316``, ``0.3/0.7``, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, ".3g")
    if isinstance(value, (list, tuple)):
        return "/".join(format_value(v) for v in value)
    return str(value)


def _number(spec: str, scale: float = 1.0) -> Callable[[Any], str]:
    def fmt(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer() and spec == ",":
            value = int(value)
        return format(value / scale if scale != 1.0 else value, spec)

    return fmt


@dataclass(frozen=True)
class Column:
    key: str  # the row key
    header: str
    render: Callable[[Any], str]
    numeric: bool = True

    def cells(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        return [self.render(r.get(self.key)) for r in rows]

    def width(self, rows: Sequence[dict[str, Any]]) -> int:
        return max([len(self.header), *(len(c) for c in self.cells(rows))])


# The paths a sampled design's label (hpo.record.model_label) spells out, and the row keys
# (hpo.pareto.trial_row) that carry them.
LABEL_PATHS = {
    "model.block.name": "block",
    "model.stem.name": "stem",
    "model.features": "features",
    "model.stacks": "stacks",
}


def _label(row: dict[str, Any]) -> str:
    return model_label(*(row.get(key) for key in LABEL_PATHS.values()))


def _short(path: str) -> str:
    if path in SHORT_NAMES:
        return SHORT_NAMES[path]
    parts = path.split(".")
    return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]


def _differs(rows: Sequence[dict[str, Any]], key: str) -> bool:
    return len({format_value(r.get(key)) for r in rows}) > 1


def table_columns(
    rows: Sequence[dict[str, Any]], objectives: Sequence[str]
) -> tuple[list[Column], list[Column], list[Column]]:
    """``(fixed, searched, costs)``: the columns always shown, the searched paths that differ
    among ``rows`` (most telling first), and the measured costs."""
    fixed = [Column("number", "#", str)]
    for name in objectives:
        header, spec = OBJECTIVE_HEADERS.get(name, (name, ",.4g"))
        fixed.append(Column(name, header, _number(spec)))
    if any(r.get("design") for r in rows):
        fixed.append(Column("design", "design", lambda v: v or "", numeric=False))
    paths = [k for k in (rows[0] if rows else {}) if k.startswith(("model.", "schedule."))]
    if rows and all(r.get("design") == _label(r) for r in rows):  # every design says these already
        paths = [p for p in paths if p not in LABEL_PATHS]
    order = {p: i for i, p in enumerate(SHORT_NAMES)}
    paths.sort(key=lambda p: (order.get(p, len(order)), p))
    searched = [Column(p, _short(p), format_value, numeric=False) for p in paths if _differs(rows, p)]
    costs = [
        Column(key, header, _number(spec, 1e9 if key == "flops" else 1.0))
        for key, header, spec in COSTS
        if key not in objectives and any(r.get(key) is not None for r in rows)
    ]
    return fixed, searched, costs


def _other_cells(rows: Sequence[dict[str, Any]], folded: Sequence[Column]) -> list[str]:
    return [" ".join(f"{col.header}={col.render(r.get(col.key))}" for col in folded) for r in rows]


def _other_width(rows: Sequence[dict[str, Any]], folded: Sequence[Column]) -> int:
    """The least room the ``other`` column needs: its longest ``name=value``, so that it
    wraps between values and never inside one (and no more than its longest cell)."""
    cells = _other_cells(rows, folded)
    longest_token = max((len(tok) for cell in cells for tok in cell.split()), default=0)
    return max(longest_token, min(OTHER_MIN_WIDTH, max(map(len, cells), default=0)), len("other"))


def _total(widths: Sequence[int]) -> int:
    return sum(w + _PAD for w in widths) + _SEP * max(len(widths) - 1, 0)


def _pick(names: Sequence[str], candidates: Sequence[Column]) -> list[Column]:
    by_name = {c.header: c for c in candidates} | {c.key: c for c in candidates}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        allowed = ", ".join(dict.fromkeys(c.header for c in candidates)) or "none"
        raise ConfigError(f"--columns: unknown column {unknown[0]!r} (these rows have: {allowed})")
    return list(dict.fromkeys(by_name[n] for n in names))


def choose_columns(
    rows: Sequence[dict[str, Any]],
    objectives: Sequence[str],
    width: int,
    *,
    wide: bool = False,
    columns: Sequence[str] = (),
) -> tuple[list[Column], list[Column], list[Column]]:
    """``(shown, folded, hidden)``: the columns that fit ``width``, the searched ones that go
    into the ``other`` column instead, and the costs left out."""
    fixed, searched, costs = table_columns(rows, objectives)
    if columns:
        return fixed + _pick(columns, searched + costs), [], []
    if wide:
        return fixed + searched + costs, [], []
    shown = list(fixed)
    widths = [c.width(rows) for c in shown]
    for k, col in enumerate(searched):
        if _total([*widths, *(c.width(rows) for c in searched[k:])]) <= width:
            shown += searched[k:]  # all the rest fit as columns
            widths += [c.width(rows) for c in searched[k:]]
            break
        rest = searched[k + 1 :]
        if _total([*widths, col.width(rows), _other_width(rows, rest)]) > width:
            return shown, searched[k:], costs
        shown.append(col)
        widths.append(col.width(rows))
    hidden = []
    for col in costs:
        if _total([*widths, col.width(rows)]) <= width and not hidden:
            shown.append(col)
            widths.append(col.width(rows))
        else:
            hidden.append(col)
    return shown, [], hidden


def render_pareto_table(
    console: Console,
    title: str,
    rows: Sequence[dict[str, Any]],
    objectives: Sequence[str],
    *,
    wide: bool = False,
    columns: Sequence[str] = (),
) -> None:
    """Print the table on ``console`` within its width (``wide``/``columns``: as wide as needed)."""
    shown, folded, hidden = choose_columns(rows, objectives, console.width, wide=wide, columns=columns)
    # With an "other" column the table takes the whole width and gives the rest to it.
    table = Table(
        title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=True, padding=(0, 1), expand=bool(folded)
    )
    for col in shown:
        table.add_column(
            col.header, justify="right" if col.numeric else "left", no_wrap=True, min_width=col.width(rows)
        )
    if folded:
        table.add_column(
            "other", justify="left", overflow="fold", min_width=_other_width(rows, folded), ratio=1
        )
    other = _other_cells(rows, folded)
    for k, r in enumerate(rows):
        table.add_row(*(col.render(r.get(col.key)) for col in shown), *([other[k]] if folded else []))
    needed = _total([c.width(rows) for c in shown])
    if wide or columns:
        console = Console(
            width=max(needed, console.width), file=console.file, force_terminal=console.is_terminal
        )
    console.print(table)
    if "train_time" in objectives:  # the trial lines of `hpo run` show the wall time instead
        console.print(f"{OBJECTIVE_HEADERS['train_time'][0]}: {TRAIN_TIME_NOTE}")
    if hidden:
        names = ", ".join(c.header for c in hidden)
        console.print(
            f"not shown: {names} (--wide shows every column, --columns picks; --csv/--json have all)"
        )
