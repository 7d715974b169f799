"""Live progress of a search in the terminal: finished / running / failed, best, hypervolume."""

from __future__ import annotations

import optuna
from rich.console import Console
from rich.live import Live
from rich.text import Text

from autostudent.study import summary


class SearchProgress:
    """Redrawn in place on a terminal; one line per change when the output is a log or a pipe."""

    def __init__(self, study: optuna.Study, n_trials: int, console: Console | None = None) -> None:
        self.study = study
        self.n_trials = n_trials
        self.console = console or Console(stderr=True)
        self._live: Live | None = None
        self._last = ""

    def __enter__(self) -> SearchProgress:
        if self.console.is_terminal:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=2, transient=False
            )
            self._live.__enter__()
        else:
            self.update()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)

    def line(self) -> str:
        s = summary(self.study)
        st = s["states"]
        done = st["COMPLETE"] + st["PRUNED"]
        best = max(s["pareto"], key=lambda r: r["accuracy"], default=None)
        parts = [
            f"{done}/{self.n_trials} finished ({st['PRUNED']} pruned)",
            f"{st['RUNNING']} running",
            f"{st['FAIL']} failed",
        ]
        if best:
            parts.append(
                f"best acc {best['accuracy']:.4f} @ {best['params']:,} params "
                f"(trial {best['trial']})"
            )
        parts.append(f"front {len(s['pareto'])}  HV {s['hypervolume']:.4f}")
        return " · ".join(parts)

    def _render(self) -> Text:
        return Text(self.line(), style="bold")

    def update(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
            return
        text = self.line()
        if text != self._last:
            self.console.print(text, highlight=False)
            self._last = text
