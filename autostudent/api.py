"""The Python API: ``autostudent.search`` and ``autostudent.load`` return a `Study`.

    study = autostudent.search("smoke", n_trials=4, teacher=my_module)
    study.front()                       # the Pareto front, a pandas DataFrame
    study.export("out/", pick="knee")   # metrics.json's content

The CLI is a layer over these functions (``cli/``: parse the flags, call, print): one code path,
the same validation and the same study database. A user error is an
``autostudent.errors.UserError`` carrying the one-line message the CLI prints after ``error:``.
A new command is a function or a `Study` method here, and a Typer function in ``cli/`` that
calls it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autostudent import study as studydb
from autostudent.errors import UserError
from autostudent.overrides import study_config
from autostudent.storage import safe_url

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from autostudent.config import StudyConfig

__all__ = ["Study", "load", "search", "write_dashboard"]

FRONT_COLUMNS = ("trial", "accuracy", "params", "flops", "latency_ms")


def search(
    config: str | os.PathLike | dict | StudyConfig,
    *,
    storage: str | None = None,
    study: str | None = None,
    n_trials: int | None = None,
    workers: int | None = None,
    timeout: float | None = None,
    seed: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Study:
    """Create the study, or continue it, until ``n_trials`` trials are finished or ``timeout``
    seconds have passed (no trial starts after it; ``status()["stopped"]`` then says so).

    ``config``: a built-in study name (``smoke``, ``fashion_mnist``), a study YAML, a dict of
    sections or a `StudyConfig`. ``overrides`` set config fields (``overrides.py``): e.g.
    ``teacher=`` a path or an ``nn.Module``, ``data="digits"`` or arrays ``(x, y, x_test,
    y_test)``, ``budget={"epochs": 1}``. ``ray_address`` joins a Ray cluster; ``progress`` draws
    the live progress on stderr. Raises `UserError` on bad input (before the study database is
    touched), ``Interrupted`` on Ctrl-C and
    ``SearchStopped`` when the search gives up, as ``autostudent search`` exits.
    """
    from autostudent.driver import run_search  # Ray, torch: only when a search runs

    c, module = study_config(
        config,
        storage=storage,
        study=study,
        n_trials=n_trials,
        workers=workers,
        timeout=timeout,
        seed=seed,
        **overrides,
    )
    result = run_search(c, teacher_module=module, ray_address=ray_address, show_progress=progress)
    return Study(c.storage_url(), result.study_name, result)


def load(storage: str, study: str) -> Study:
    """Open a study of a database (a SQLAlchemy URL): what ``--storage``/``--study`` name."""
    return Study(storage, study)


class Study:
    """A study in its database: the handle `search` returns and `load` opens.

    ``optuna`` is the Optuna study itself (``optuna.load_study`` opens the same one).
    """

    def __init__(self, storage: str, name: str, optuna_study: optuna.Study | None = None):
        self.storage = storage
        self.name = name
        # a bad URL or an unknown name is a UserError here, before anything else
        self.optuna = optuna_study if optuna_study is not None else studydb.load(storage, name)

    def __repr__(self) -> str:
        return f"Study({self.name!r}, storage={safe_url(self.storage)!r})"

    def front(self) -> pd.DataFrame:
        """The Pareto front of COMPLETE, feasible trials: one row a trial (``trial``,
        ``accuracy`` — validation — and the sizes), sorted by the first size objective."""
        import pandas as pd

        return pd.DataFrame(studydb.pareto_rows(self.optuna), columns=list(FRONT_COLUMNS))

    def trials(self) -> pd.DataFrame:
        """Every trial: state, parameters, metrics, curve, failure (``autostudent trials``)."""
        return studydb.trials_frame(self.optuna)

    def status(self) -> dict:
        """States, front, hypervolume, teacher and driver: what ``status --json`` prints."""
        return studydb.summary(self.optuna)

    def dashboard(self, path: str | os.PathLike, *, png: str | os.PathLike | None = None) -> Path:
        """Write the study's self-contained HTML report (``autostudent dashboard --out``)."""
        return write_dashboard([self], path, png=png)

    def export(
        self,
        out: str | os.PathLike,
        *,
        trial: int | None = None,
        pick: str | None = None,
        epochs: int = 15,
        format: str = "torchscript",
        family: int = 1,
        augment: str = "none",
        seed: int = 0,
        baseline: bool = True,
        threads: int | None = None,
        **options: Any,
    ) -> dict:
        """Retrain a trial (``trial=N``, or ``pick="knee" | "max-accuracy" |
        "smallest-within:PTS" | "max-accuracy-under:SIZE"``) in full with KD and write a
        deployable directory at ``out`` (``autostudent export``); ``format``: torchscript | onnx
        | both; ``rerank=K``: the pick rule's K best candidates retrained, the best on
        validation exported; ``teacher=PATH``: the teacher file where it is not where the
        search read it (the same file: its SHA-256 is checked); ``teach_with=DIR``: another
        teacher (an exported student: a teacher assistant) teaches the retrains;
        ``arch="mobilenetv2:17k"`` (neither ``trial`` nor ``pick``): a hand-designed student
        sized to at most that many params, retrained the same way. Returns
        metrics.json's content.
        ``threads``: torch CPU threads while it trains (restored after; with ``workers=N``, of
        each of the N processes, default 1). ``options``: any
        other field of ``export.ExportRequest`` (a newer export flag), passed on as is."""
        from autostudent.export import ExportRequest, run_export

        fields = {f.name for f in dataclasses.fields(ExportRequest)} - {"storage", "study", "out"}
        fields -= {"trial", "pick", "epochs", "format", "family", "augment", "seed", "baseline"}
        fields -= {"threads"}
        unknown = sorted(set(options) - fields)
        if unknown:
            others = f" (others: {', '.join(sorted(fields))})" if fields else ""
            raise UserError(f"{unknown[0]}: not an export option of Study.export{others}")
        request = ExportRequest(
            storage=self.storage,
            study=self.name,
            out=Path(out),
            trial=trial,
            pick=pick,
            epochs=epochs,
            format=format,
            family=family,
            augment=augment,
            seed=seed,
            baseline=baseline,
            threads=threads,
            **options,
        )
        from autostudent.device import torch_threads

        with torch_threads(threads):
            return run_export(request)

    def baselines(
        self,
        *,
        families: Sequence[str | Callable[..., Any]] = ("resnet", "mobilenetv2"),
        sizes: Sequence[int] | None = None,
        seeds: int = 3,
        epochs: int = 5,
        augment: str = "none",
        students: bool = True,
        workers: int = 1,
        threads: int = 1,
        raw_dir: str | os.PathLike | None = None,
        dry_run: bool = False,
        teacher: str | os.PathLike | None = None,
        device: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> dict:
        """Hand-designed students (each family sized to every front student, or to ``sizes``)
        and the front's students, retrained with export's recipe with and without KD over
        seeds (``autostudent baselines``); every run is stored in the study and never run
        again. Returns the baselines and each front student's margin over the best baseline of
        at most its size. ``teacher``: the teacher file where it is not where the search read it
        (the same file: its SHA-256 is checked). ``device``: where the runs train when not where
        the search trained (``"cuda"``, ``"cpu"``). ``log``: called with each progress line.
        ``families``: names, ``"package.module:factory"``, or such a factory itself (a function
        of an importable module; docs/baselines.md). ``augment``: export's ``--augment`` modes
        but ``views`` (``"mixup"``: the recipe of an ``export --augment mixup``)."""
        from autostudent.families import factory_name, family_names
        from autostudent.final_training import run_baselines

        names = [f if isinstance(f, str) else factory_name(f) for f in families]
        return run_baselines(
            self.storage,
            self.name,
            families=family_names(",".join(names)),
            sizes=sizes,
            seeds=seeds,
            epochs=epochs,
            augment=augment,
            students=students,
            workers=workers,
            threads=threads,
            raw_dir=None if raw_dir is None else Path(raw_dir),
            dry_run=dry_run,
            teacher=None if teacher is None else Path(teacher),
            device=device,
            log=log or (lambda _line: None),
        )


def write_dashboard(
    studies: Sequence[Study], out: str | os.PathLike, *, png: str | os.PathLike | None = None
) -> Path:
    """One HTML report of several studies (their fronts overlaid); ``png``: also a screenshot
    of it (needs Chromium and Playwright)."""
    from autostudent.dashboard import write_report
    from autostudent.dashboard._data import study_data

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out: {out} should end in .html")
    write_report([study_data(s.optuna, safe_url(s.storage)) for s in studies], out)
    if png is not None:
        from autostudent.dashboard import VIEWS
        from autostudent.dashboard._browser import screenshot

        per_study = sum(1 for v in VIEWS if not v.overlay)
        count = sum(1 for v in VIEWS if v.overlay) + per_study * len(studies)
        screenshot(out.resolve().as_uri(), Path(png), count)
    return out
