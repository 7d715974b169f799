"""Live progress in the terminal: a search (finished / running / failed, best, hypervolume) and
a retrain (a bar over every training step). Both fall back to plain lines when the output is a
log or a pipe, so a `nohup` log stays readable."""

from __future__ import annotations

import optuna
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
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


class TrainingProgress:
    """A bar over ``epochs`` x ``steps`` training steps on a terminal; otherwise one line per
    epoch (``label: epoch 3/20 · 41 s``)."""

    def __init__(self, label: str, epochs: int, steps: int, console: Console | None = None) -> None:
        self.label = label
        self.epochs = epochs
        self.console = console or Console(stderr=True)
        self._bar: Progress | None = None
        self._task = None
        self._total = epochs * steps
        self._seconds: list[float] = []

    def __enter__(self) -> TrainingProgress:
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self._total)
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def step(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def resumed(self, epochs: int, text: str) -> None:
        """``epochs`` were trained before this run (a resumed checkpoint): counted as done."""
        if self._bar is not None:
            self._bar.advance(self._task, epochs * self._total // self.epochs)
        self.note(text)

    def note(self, text: str) -> None:
        """One line about this run (``label: text``), above the bar on a terminal."""
        self.console.print(f"{self.label}: {text}", highlight=False, soft_wrap=True)

    def epoch(self, epoch: int, seconds: float) -> None:
        self._seconds.append(seconds)
        text = f"{self.label}: epoch {epoch}/{self.epochs} · {seconds:.0f} s"
        if epoch < self.epochs:  # at the mean pace of this run's epochs so far
            left = (self.epochs - epoch) * sum(self._seconds) / len(self._seconds)
            text += f" · ~{duration(left)} left"
        if self._bar is not None:
            self._bar.update(self._task, description=text)
        else:
            self.console.print(text, highlight=False)


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
