"""What pruning bought a study: epochs trained against epochs that training every design to
the end would have cost, and how many designs were cut at which epoch.

Read from the trial record (:mod:`hpo.record`) of the finished trials (COMPLETE or PRUNED),
so it holds for any study, resumed or shared by several workers. A trial that copied a
completed design (:data:`hpo.record.COPIED_FROM`) trained nothing and would have trained
nothing either: it is counted apart, not as a design. Epochs are counted per design as far as
its training got (``epochs_run``, epochs a retry resumed from a checkpoint included: a failed
attempt trained them once), against the epochs of its own schedule (a space may search them).
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hpo import record as rec

__all__ = ["PruningSavings", "pruning_savings"]

_FINISHED = ("COMPLETE", "PRUNED")


@dataclass(frozen=True)
class PruningSavings:
    designs: int  # distinct designs trained (finished trials less copies)
    copies: int  # finished trials that copied a completed design
    trained: int  # epochs the designs trained
    full: int  # epochs they would have trained, each to the end of its schedule
    cut_at: dict[int, int] = field(default_factory=dict)  # epoch -> designs cut there by the pruner
    diverged: int = 0  # designs stopped on a NaN/Inf loss (pruned, but not by a rung)

    @property
    def cut(self) -> int:
        return sum(self.cut_at.values())

    @property
    def saved(self) -> int:
        return self.full - self.trained

    def lines(self, width: int = 80) -> list[str]:
        """The closing lines of a run: designs cut (per epoch) and epochs saved, each wrapped
        to ``width`` columns under an 11-column label."""
        where = ", ".join(f"{n} at epoch {e}" for e, n in sorted(self.cut_at.items()))
        cut = f"{self.cut} of {self.designs} designs cut" + (f": {where}" if where else "")
        if self.diverged:
            cut += f"; {self.diverged} stopped on a diverged loss"
        if self.copies:
            cut += (
                f"; {self.copies} repeated {'design' if self.copies == 1 else 'designs'} copied, not "
                "retrained"
            )
        share = f" ({100.0 * self.saved / self.full:.0f} %)" if self.full else ""
        epochs = (
            f"{self.trained} trained, {self.saved}{share} saved of {self.full} for every design to the end"
        )
        out = []
        for label, text in (("pruning:", cut), ("epochs:", epochs)):
            out += textwrap.wrap(text, width, initial_indent=f"{label:<11s}", subsequent_indent=" " * 11)
        return out


def _schedule_epochs(trial: Any) -> int | None:
    epochs = ((rec.get(trial, rec.CONFIG) or {}).get("schedule") or {}).get("epochs")
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None


def pruning_savings(trials: Iterable[Any]) -> PruningSavings:
    """The savings of the finished ``trials`` (Optuna ``FrozenTrial``\\ s of one study)."""
    designs = copies = trained = full = diverged = 0
    cut_at: Counter[int] = Counter()
    for t in trials:
        if t.state.name not in _FINISHED:
            continue
        if rec.get(t, rec.COPIED_FROM) is not None:
            copies += 1
            continue
        r = rec.TrialRecord.of(t)
        ran = r.epochs_run if r.epochs_run is not None else len(r.curve)
        end = _schedule_epochs(t)
        designs += 1
        trained += ran
        full += max(end if end is not None else ran, ran)
        if t.state.name == "PRUNED":
            if r.prune_reason == "diverged":
                diverged += 1
            else:
                cut_at[r.pruned_at_epoch if r.pruned_at_epoch is not None else ran] += 1
    return PruningSavings(designs, copies, trained, full, dict(cut_at), diverged)
