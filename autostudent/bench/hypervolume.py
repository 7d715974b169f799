"""``bench hypervolume``: one real KD search task run with each sampler, side by side.

The task (``--task``, ``TASKS``): ``fashion-mnist-2k`` (the default: 2,000 Fashion-MNIST training
images, 6,000 validation images, the demo's committed teacher; ~40 min for 5 samplers x 5 seeds on
2 cores), ``fashion-mnist-2k-flops`` (the same data and teacher, a task of another shape: FLOPs
as the size objective under a 12M-FLOPs cap, 4-epoch trials, 6 start-up trials; the sampler's
settings were tuned on the first task and must hold here) or ``digits`` (sklearn's digits, a
ResNet-8 teacher of width 8 trained once here with a fixed seed and kept in the output folder;
~9 min, but its 359 validation images measure an accuracy to +-1.4 points, too coarse to rank the
samplers at 40 trials). All search the NAGO space in the demo's ranges with the five KD losses,
2 workers and the same early-stopping rule (MO-ASHA) for every sampler; ``fashion-mnist-2k`` and
``digits`` with 3-epoch trials and a 50K-param cap (the hypervolume's reference). Every sampler
runs every seed to the same number of finished trials (COMPLETE + PRUNED).

Every run keeps its raw numbers in ``OUT/runs/{sampler}-seed{seed}.json`` (hypervolume after each
finished trial, in finishing order, and the study clock at that moment) beside its study database;
a run whose JSON exists is not run again, so the bench resumes after a kill. Hypervolume is the
study's own (``pareto.hypervolume`` with the study's stored reference), the dashboard's history.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from autostudent.config import (
    BudgetConfig,
    CoverageConfig,
    SearchConfig,
    StudyConfig,
    describe_error,
)
from autostudent.errors import UserError

SAMPLERS = ("botorch", "tpe", "nsga2", "gp", "random")
CHECKPOINTS = (10, 20, 40)
TEACHER_EPOCHS = 15

# What every task shares: the demo's NAGO ranges, the five KD losses, 3-epoch trials, a 50K-param
# cap (the hypervolume's reference), 2 workers, MO-ASHA for every sampler.
_COMMON: dict = {
    "space": {
        "name": "nago",
        "overrides": {
            "top_nodes": {"low": 3, "high": 6},
            "mid_nodes": {"low": 1, "high": 3},
            "bottom_nodes": {"low": 1, "high": 3},
            "width": {"low": 8, "high": 32, "log": True},
        },
    },
    "kd": {"losses": ["kd", "mse", "dkd", "rkd", "wsl"]},
    "caps": {"max_params": 50_000},
    "search": {
        "workers": 2,
        "n_startup_trials": 10,
        "objectives": ["accuracy", "params"],
        "early_stopping": "moasha",
    },
}


@dataclass(frozen=True)
class Task:
    """One KD search task: its title, the study fields beside ``_COMMON``, and its teacher."""

    title: str
    fields: dict
    teacher: Callable[[Path], Path]  # out folder -> the teacher file


def _digits_teacher(out: Path) -> Path:
    """sklearn's digits: a ResNet-8 (width 8) trained once, seeded, kept beside the results."""
    path = out / "teacher.pt2"
    if not path.exists():
        from autostudent.datasets import load_data
        from autostudent.teacher import save_teacher
        from autostudent.zoo import train_teacher

        d = TASKS["digits"].fields["data"]
        data = load_data(d["name"], val_fraction=d["val_fraction"], seed=d["split_seed"])
        model = train_teacher(
            "resnet8", data, epochs=TEACHER_EPOCHS, seed=0, width=8, log=lambda _: None
        )
        save_teacher(model, path, data.input_shape)
    return path


def _demo_teacher(out: Path) -> Path:
    """The Fashion-MNIST demo's committed teacher (package data)."""
    from autostudent.builtin import folder

    return folder("studies") / "teachers" / "fashion_mnist_resnet8.pt2"


TASKS: dict[str, Task] = {
    "digits": Task(
        "digits · NAGO (demo ranges) · 3-epoch KD trials · MO-ASHA · params cap 50K",
        {
            "data": {"name": "digits", "val_fraction": 0.2, "split_seed": 0},
            "budget": {"epochs": 3, "batch_size": 64, "lr": 0.05},
        },
        _digits_teacher,
    ),
    # 2,000 training images, validated on 6,000: an accuracy is measured to +-0.4 points (digits'
    # 359 validation images: +-1.4), so samplers differing by a point can be told apart.
    # Another shape for the same data: the size axis, cap, budget and start-up all differ, so
    # that a setting tuned on fashion-mnist-2k (ParEGO share, fidelity cut-off, start-up
    # counting, the coverage rules) is checked where it was not tuned. 12M FLOPs is about the
    # FLOPs of a 50K-param student of this space (32,977 params: 7.96M FLOPs).
    "fashion-mnist-2k-flops": Task(
        "Fashion-MNIST 2K · NAGO (demo ranges) · 4-epoch KD trials · MO-ASHA · FLOPs cap 12M "
        "· 6 start-up trials",
        {
            "data": {"name": "fashion-mnist", "val_fraction": 0.1, "split_seed": 0},
            "budget": {"epochs": 4, "train_subset": 2000, "batch_size": 64, "lr": 0.05},
            "caps": {"max_flops": 12_000_000},
            "search": {"n_startup_trials": 6, "objectives": ["accuracy", "flops"]},
        },
        _demo_teacher,
    ),
    "fashion-mnist-2k": Task(
        "Fashion-MNIST 2K · NAGO (demo ranges) · 3-epoch KD trials · MO-ASHA · params cap 50K",
        {
            "data": {"name": "fashion-mnist", "val_fraction": 0.1, "split_seed": 0},
            "budget": {"epochs": 3, "train_subset": 2000, "batch_size": 64, "lr": 0.05},
        },
        _demo_teacher,
    ),
}


def task_config(
    out: Path,
    teacher: Path,
    sampler: str,
    seed: int,
    n_trials: int,
    task: str,
    coverage: Mapping[str, Any] | None = None,
    prune_gap_proposals: bool | None = None,
    budget: Mapping[str, Any] | None = None,
) -> StudyConfig:
    """The task's study for one run; ``coverage`` (``search.coverage`` fields) sets ours' rules
    and ``prune_gap_proposals`` whether MO-ASHA may stop ours' gap proposals (None: the
    product's default; Optuna's samplers have neither); ``budget`` (``budget`` fields, e.g.
    ``rung_average``) changes how every sampler's trials train and read their rungs."""
    name = f"{sampler}-seed{seed}"
    raw = {
        **_COMMON,
        **TASKS[task].fields,
        "budget": _budget(task, budget),
        "study": f"hv-{name}",
        "storage": f"sqlite:///{(out / 'runs' / f'{name}.db').resolve()}",
        "seed": seed,
        "cache_dir": str((out / "cache").resolve()),
        "teacher": {"path": str(teacher.resolve())},
        "search": _search(task, sampler, n_trials, coverage, prune_gap_proposals),
    }
    return StudyConfig.model_validate(raw)


def _budget(task: str, budget: Mapping[str, Any] | None) -> dict:
    """The task's ``budget`` fields with the arm's (``--rung-average``) over them."""
    return {**TASKS[task].fields["budget"], **(budget or {})}


def _search(
    task: str,
    sampler: str,
    n_trials: int,
    coverage: Mapping[str, Any] | None,
    prune_gap_proposals: bool | None,
) -> dict:
    """The ``search`` section of the task's study for ``sampler``."""
    ours: dict = {}
    if sampler == "botorch":
        ours = {"prune_gap_proposals": prune_gap_proposals}
        if coverage:  # else the task's own (its fields may name some)
            ours["coverage"] = dict(coverage)
    return {
        **_COMMON["search"],
        **TASKS[task].fields.get("search", {}),
        **ours,
        "sampler": sampler,
        "n_trials": n_trials,
    }


def run_once(config: StudyConfig) -> dict:
    """One search to ``n_trials`` finished trials; its hypervolume and clock per finished trial.
    A search the product stops (``SearchStopped``: too many failed trials in a row, e.g. a
    sampler that keeps proposing students over the cap) is a result too: its record holds the
    trials that finished and ``stopped``, the reason."""
    from autostudent import study as studydb
    from autostudent.dashboard._data import hypervolume_history, trials_table
    from autostudent.driver import run_search
    from autostudent.errors import SearchStopped

    started = time.perf_counter()
    stopped = None
    try:
        study = run_search(config, show_progress=False)
    except SearchStopped as error:
        stopped = str(error)
        study = studydb.load(config.storage_url(), config.study)
    wall = time.perf_counter() - started
    table = trials_table(study.trials)
    history = hypervolume_history(
        table, studydb.objectives_of(study), study.user_attrs["hv_reference"]
    )
    done = table[table["state"].isin(["COMPLETE", "PRUNED"])].sort_values("complete")
    origin = table["start"].dropna().min()  # the study clock: the first proposal started
    summary = studydb.summary(study)
    ours = config.search.sampler == "botorch"
    return {
        "sampler": config.search.sampler,
        "seed": config.seed,
        "coverage": config.search.coverage.model_dump(mode="json") if ours else None,
        "prune_gap_proposals": config.search.prune_gap_proposals if ours else None,
        "rung_average": config.budget.rung_average,
        "trials": config.search.n_trials,
        "hv_reference": study.user_attrs["hv_reference"],
        "hv_per_trial": [float(v) for v in history["hypervolume"]],
        "wall_s_per_trial": [(c - origin).total_seconds() for c in done["complete"]],
        "trial_numbers": [int(n) for n in done["number"]],
        "states": summary["states"],
        "fallbacks": summary.get("fallbacks"),
        "command_wall_s": wall,
        "stopped": stopped,
    }


def _arm_of(run: dict) -> dict:
    """The settings a stored run of ours ran with (runs from before a field: the only setting
    there was)."""
    kept = run.get("prune_gap_proposals")
    return {
        "coverage": run.get("coverage") or CoverageConfig().model_dump(mode="json"),
        "prune_gap_proposals": True if kept is None else kept,
    }


def _yaml(value: float | str | None) -> str:
    return "none" if value is None else value if isinstance(value, str) else f"{value:g}"


def _quantile(values: Sequence[float], q: float) -> float:
    return float(np.quantile(np.asarray(values, dtype=float), q))


def hv_at(run: dict, k: int) -> float:
    """The run's hypervolume after ``k`` finished trials; a stopped run's stays where it ended."""
    return run["hv_per_trial"][min(k, len(run["hv_per_trial"])) - 1]


def hv_at_time(run: dict, seconds: float) -> float:
    """The run's hypervolume when its study clock read ``seconds`` (0 before any finished)."""
    k = int(np.searchsorted(run["wall_s_per_trial"], seconds, side="right"))
    return run["hv_per_trial"][k - 1] if k else 0.0


def summarise(runs: dict[str, list[dict]], n_trials: int) -> dict:
    """Per sampler: hypervolume at ``n_trials`` (median, quartiles), at 10/20/40 finished, the
    wall clock to ``n_trials``, and at equal wall clock (the fastest sampler's median)."""
    out: dict = {}
    walls = {
        name: statistics.median(r["wall_s_per_trial"][-1] for r in rs)
        for name, rs in runs.items()
        if rs
    }
    equal_wall = min(walls.values()) if walls else None
    for name, rs in runs.items():
        if not rs:
            continue
        final = [r["hv_per_trial"][-1] for r in rs]
        at = {
            str(k): statistics.median(hv_at(r, k) for r in rs) if k <= n_trials else None
            for k in CHECKPOINTS
        }
        out[name] = {
            "hv_median": statistics.median(final),
            "hv_q25": _quantile(final, 0.25),
            "hv_q75": _quantile(final, 0.75),
            "hv_at": at,
            "wall_s_median": walls[name],
            "hv_per_s": statistics.median(final) / walls[name],
            "hv_at_equal_wall": statistics.median(hv_at_time(r, equal_wall) for r in rs),
            "seeds_done": [r["seed"] for r in rs],
            "fallbacks": sum(r["fallbacks"] or 0 for r in rs),
            # runs the product stopped before n_trials finished (counted at their last value)
            "stopped": sum(bool(r.get("stopped")) for r in rs),
        }
    return {"equal_wall_s": equal_wall, "samplers": out}


def bench_hypervolume(
    out: Path,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_trials: int = 40,
    samplers: Sequence[str] = SAMPLERS,
    teacher: Path | None = None,
    task: str = "fashion-mnist-2k",
    coverage: Mapping[str, Any] | None = None,
    prune_gap_proposals: bool | None = None,
    budget: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> dict:
    from autostudent.executor import Resources, init_ray
    from autostudent.sampler import load_fused_kernel

    out = Path(out)
    try:
        rules = CoverageConfig.model_validate(coverage or {}).model_dump(mode="json")
    except ValidationError as error:
        raise UserError(f"--coverage: {describe_error(error)}") from None
    ours = SearchConfig.model_validate(
        _search(task, "botorch", n_trials, coverage, prune_gap_proposals)
    )  # the product's default resolved, as the runs store it
    arm = {"coverage": rules, "prune_gap_proposals": ours.prune_gap_proposals}
    try:  # the product's default resolved, as every sampler's runs store it
        rung_average = BudgetConfig.model_validate(_budget(task, budget)).rung_average
    except ValidationError as error:
        raise UserError(
            "--rung-average: " + describe_error(error).removeprefix("rung_average: ")
        ) from None
    for name in samplers:  # a resumed bench must not mix runs whose rungs read differently
        for path in sorted((out / "runs").glob(f"{name}-seed*.json")):
            then = json.loads(path.read_text()).get("rung_average")  # before the field: none
            if then != rung_average:
                raise UserError(
                    f"--out: {path} ran with rung_average {_yaml(then)}; give --rung-average "
                    f"{_yaml(then)} to resume it, or another --out"
                )
    stored = sorted((out / "runs").glob("botorch-seed*.json")) if "botorch" in samplers else []
    for path in stored:  # a resumed bench must not mix two arms of ours under one name
        then = _arm_of(json.loads(path.read_text()))
        if then["coverage"] != arm["coverage"]:
            raise UserError(f"--out: {path} ran ours with other coverage rules; give another --out")
        if then["prune_gap_proposals"] != arm["prune_gap_proposals"]:
            flag = "--prune" if then["prune_gap_proposals"] else "--keep"
            raise UserError(
                f"--out: {path} ran ours with prune_gap_proposals "
                f"{str(then['prune_gap_proposals']).lower()}; give {flag}-gap-proposals to "
                "resume it, or another --out"
            )
    (out / "runs").mkdir(parents=True, exist_ok=True)
    teacher = teacher or TASKS[task].teacher(out)
    init_ray(None, Resources(workers=_COMMON["search"]["workers"]))
    # one-off costs before the first timed run, whichever sampler it is
    load_fused_kernel()
    runs: dict[str, list[dict]] = {name: [] for name in samplers}
    for seed in seeds:  # seeds outside: a partial bench has every sampler at the same seeds
        for name in samplers:
            raw = out / "runs" / f"{name}-seed{seed}.json"
            if raw.exists() and json.loads(raw.read_text())["trials"] == n_trials:
                runs[name].append(json.loads(raw.read_text()))
                continue
            db = out / "runs" / f"{name}-seed{seed}.db"
            db.unlink(missing_ok=True)  # a killed run restarts clean: its clock must be whole
            log(f"run {name} seed {seed}")
            config = task_config(
                out, teacher, name, seed, n_trials, task, coverage, prune_gap_proposals, budget
            )
            result = run_once(config)
            tmp = raw.with_suffix(".partial")
            tmp.write_text(json.dumps(result, indent=1))
            tmp.replace(raw)
            runs[name].append(result)
            log(f"  hv {result['hv_per_trial'][-1]:.4f} in {result['wall_s_per_trial'][-1]:.0f}s")
            if result["stopped"]:
                log(f"  {len(result['hv_per_trial'])} of {n_trials} finished: {result['stopped']}")
    return {
        "task": TASKS[task].title,
        "trials": n_trials,
        "seeds": list(seeds),
        "coverage": rules,
        "prune_gap_proposals": arm["prune_gap_proposals"],
        "rung_average": rung_average,
        **summarise(runs, n_trials),
        "out": str(out),
    }
