"""The study database: an Optuna study in RDB storage, the single source of truth.

Study attributes hold the config and the teacher/data identity; each trial holds its
architecture spec, seed, KD settings (its params), per-epoch curve, metrics and failure reason,
so a study can be resumed, plotted or exported from the database alone. ``optuna.load_study``
and optuna-dashboard open it unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autostudent import baselines, final_runs, worker_log
from autostudent import objectives as objs
from autostudent.errors import UserError
from autostudent.lease import driver_info
from autostudent.pareto import hypervolume, pareto_mask
from autostudent.sampler import FALLBACK_ATTR, PROPOSAL_ATTR, RELAXED_ATTR
from autostudent.storage import open_storage as storage  # studydb.storage: the callers' name
from autostudent.storage import require_existing, retrying, safe_url

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# how the last run of ``search`` stopped short of n_trials by design (search.timeout), or None
STOPPED_ATTR = "run_stopped"


def load(url: str, name: str) -> optuna.Study:
    require_existing(url)
    store = storage(url)
    try:
        return optuna.load_study(study_name=name, storage=store)
    except KeyError:
        known = [s.study_name for s in optuna.get_all_study_summaries(store)]
        hint = f" (studies there: {', '.join(known)})" if known else " (it holds no study)"
        raise UserError(f"--study: no study {name!r} in {safe_url(url)}{hint}") from None


def create_or_load(
    url: str, name: str, objectives: Sequence[str], sampler: optuna.samplers.BaseSampler
) -> optuna.Study:
    directions = objs.directions(objectives)
    study = optuna.create_study(
        study_name=name,
        storage=storage(url),
        directions=directions,
        sampler=sampler,
        load_if_exists=True,
    )
    if [d.name.lower() for d in study.directions] != directions:
        raise UserError(
            f"search.objectives: study {name!r} exists with directions "
            f"{[d.name.lower() for d in study.directions]}, the config asks for {directions}"
        )
    if study.metric_names != list(objectives):
        # Named objectives label the axes of optuna-dashboard and Optuna's own plots.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(objectives))
    return study


def check_identity(study: optuna.Study, key: str, value: dict, field: str) -> None:
    """A resumed study must keep its teacher and data: compare with what it was created with."""
    stored = study.user_attrs.get(key)
    if stored is None:
        study.set_user_attr(key, value)
        return
    _same_identity(study, key, stored, value, field)


def _same_identity(study: optuna.Study, key: str, stored: dict, value: dict, field: str) -> None:
    for k in ("sha256", "identity"):
        if k in stored and k in value and stored[k] != value[k]:
            raise UserError(
                f"{field}: study {study.study_name!r} was created with a different {key} "
                f"({k} {stored[k][:12]}…, now {value[k][:12]}…); use a new --study name"
            )
    # the images the teacher is fed (studies from before teacher.input: the default)
    if "input" in value and stored.get("input", "normalised") != value["input"]:
        raise UserError(
            f"teacher.input: study {study.study_name!r} fed its teacher "
            f"{stored.get('input', 'normalised')} images, the config says {value['input']}; "
            "use a new --study name"
        )


def check_resumable(
    url: str, name: str, objectives: Sequence[str], identities: dict[str, tuple[str, dict]]
) -> None:
    """Fail before anything is written when study `name` exists as another study: other
    objectives (its trials would mix (accuracy, params) with (accuracy, flops)), another teacher
    or other data. `identities` maps a study attribute to (config field, identity now).
    Opening the storage also fails here for a bad or unreachable URL."""
    store = storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=store)
    except KeyError:
        return  # a new study
    stored = study.user_attrs.get("objectives") or study.metric_names
    if stored is None:  # created by a driver killed at once: only its directions say anything
        stored_dirs = [d.name.lower() for d in study.directions]
        same = stored_dirs == objs.directions(objectives)
        stored = stored_dirs
    else:
        same = list(stored) == list(objectives)
    if not same:
        raise UserError(
            f"search.objectives: study {name!r} in {safe_url(url)} was created with objectives "
            f"[{', '.join(stored)}], the config asks for [{', '.join(objectives)}]; "
            "use a new --study name"
        )
    for key, (field, value) in identities.items():
        if key in study.user_attrs:
            _same_identity(study, key, study.user_attrs[key], value, field)


@retrying
def set_user_attrs(trial: optuna.trial.Trial, attrs: Mapping[str, Any]) -> None:
    """Several user attributes of a running trial in one database transaction.

    Optuna commits every ``set_user_attr`` on its own; on SQLite each commit is an fsync
    (10-40 ms on the shared machine) and a trial stores ~17 attributes, in the driver, between
    one trial and the next. Other storages (in-memory, journal) get the per-key calls."""
    store = trial.storage
    backend = getattr(store, "_backend", store)
    if not isinstance(backend, optuna.storages.RDBStorage):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session, True) as session:
        for key, value in attrs.items():
            backend._set_trial_attr_without_commit(
                session, models.TrialUserAttributeModel, trial._trial_id, key, value
            )
    trial._cached_frozen_trial.user_attrs.update(attrs)  # what Trial.set_user_attr keeps too


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def recover_interrupted(study: optuna.Study, driver: dict | None = None) -> int:
    """Trials a dead driver left RUNNING become FAIL and their parameters are queued again.

    Runs while this driver holds the study's lease (lease.py), so every RUNNING trial is a dead
    driver's (``driver``: its host and pid, when known) — when it starts, and when it stops.
    """
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    store = study._storage
    who = f" (host {driver['host']}, pid {driver['pid']})" if driver else ""
    for trial in stale:
        store.set_trial_user_attr(
            trial._trial_id, "failure", f"{INTERRUPTED} the search driver{who} stopped"
        )
        store.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        # a requeued trial killed before its parameters were set holds them as fixed params
        params = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
        study.enqueue_trial(
            params, user_attrs={"requeued_from": trial.number}, skip_if_exists=False
        )
    return len(stale)


INTERRUPTED = "interrupted:"  # the failure reason of a recovered trial starts so


def objectives_of(study: optuna.Study) -> list[str]:
    return list(study.user_attrs.get("objectives", ["accuracy", "params"]))


def size_objective(study: optuna.Study) -> str | None:
    """The study's first size objective (params, flops or latency_ms); None if accuracy only."""
    return next((o for o in objectives_of(study) if o != "accuracy"), None)


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """COMPLETE trials within the study's caps (pruned trials are low-fidelity and stay out)."""
    return [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if _feasible(t)
    ]


def pareto_rows(study: optuna.Study) -> list[dict]:
    """Non-dominated COMPLETE trials (pruned trials are low-fidelity and stay out)."""
    objectives = objectives_of(study)
    done = complete_trials(study)
    if not done:
        return []
    import numpy as np

    pts = np.array([t.values for t in done], dtype=float)
    mask = pareto_mask(pts, [objs.objective(o).maximize for o in objectives])
    rows = [trial_metrics(t) for t, keep in zip(done, mask, strict=True) if keep]
    return sorted(rows, key=lambda r: r[objectives[1]] if len(objectives) > 1 else -r["accuracy"])


def _feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0 for v in trial.constraints.values())


def trial_metrics(trial: FrozenTrial) -> dict:
    a = trial.user_attrs
    return {
        "trial": trial.number,
        "accuracy": a.get("val_accuracy"),
        "params": a.get("params"),
        "flops": a.get("flops"),
        "latency_ms": a.get("latency_ms"),
    }


def study_hypervolume(study: optuna.Study) -> float:
    objectives = objectives_of(study)
    rows = pareto_rows(study)
    refs = study.user_attrs.get("hv_reference", {})
    size_objs = [o for o in objectives if o in objs.SIZES]
    if not rows or any(o not in refs for o in size_objs):
        return 0.0
    return hypervolume(
        [r["accuracy"] for r in rows],
        [[r[o] for r in rows] for o in size_objs],
        [refs[o] for o in size_objs],
    )


def summary(study: optuna.Study) -> dict:
    """What ``status --json`` prints."""
    states = {s: 0 for s in ("COMPLETE", "PRUNED", "RUNNING", "FAIL", "WAITING")}
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    teacher = study.user_attrs.get("teacher", {})
    driver = driver_info(study._storage, study.study_name)
    recovered = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    runs = list(final_runs.stored(study).values())
    margin = baselines.margin_by_trial(runs)
    front = pareto_rows(study)
    return {
        "study": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "objectives": objectives_of(study),
        "states": states,
        # margin_over_baseline: points of test accuracy over the best hand-designed student of
        # at most its size (export's recipe, mean over seeds); None until both were retrained
        "pareto": [{**r, "margin_over_baseline": margin.get(r["trial"])} for r in front],
        "hypervolume": study_hypervolume(study),
        "hypervolume_reference": study.user_attrs.get("hv_reference", {}),
        # proposals that were not the sampler's Bayesian ones (a numerical failure): never silent
        "fallbacks": sum(FALLBACK_ATTR in t.user_attrs for t in trials),
        # how the sampler proposed each trial (sobol, ehvi, parego, ei, gap), and the proposals
        # that had to drop a coverage rule (every student trained 3 times, no point in the gap)
        "proposals": _count(t.user_attrs.get(PROPOSAL_ATTR) for t in trials),
        "relaxed": _count(t.user_attrs.get(RELAXED_ATTR) for t in trials),
        "teacher": {
            "accuracy": teacher.get("val_accuracy"),
            "test_accuracy": teacher.get("test_accuracy"),
            "params": teacher.get("params"),
            "input": teacher.get("input", "normalised"),  # the images it is fed (teacher.input)
            # 1 / classes: a teacher near it is fed other images than it was trained on, or
            # was not trained for this data (status says so)
            "chance": 1 / n if (n := study.user_attrs.get("data", {}).get("num_classes")) else None,
        },
        # the driver running the study (or the last one), and what crashes cost
        "driver": driver,
        "recoveries": sum(
            str(t.user_attrs.get("failure", "")).startswith(INTERRUPTED) for t in recovered
        ),
        "storage_retries": driver["storage_retries"] if driver else 0,
        "cache_rebuilds": study.user_attrs.get("cache_rebuilds", 0),
        # hand-designed students trained with export's recipe (``autostudent baselines``)
        "baselines": baselines.baseline_rows(runs),
        # the validation images a complete trial's accuracy is read on: one of them is
        # 100 / val_images points, the finest step between two students (None: an older study)
        "val_images": study.user_attrs.get("data", {}).get("val_images"),
        # unreadable images left out of the data (data.skip_bad_files)
        "skipped_files": len(study.user_attrs.get("data", {}).get("skipped_files", [])),
        # what the Ray workers printed, failed trials' whole tracebacks included
        "worker_log": worker_log.shown(study),
        # the last run stopped at its time budget (search.timeout) before n_trials, or None
        "stopped": study.user_attrs.get(STOPPED_ATTR),
        # students between the front's largest and the cap that a rung stopped
        "stopped_under_cap": stopped_under_cap(study, front),
        # the hard caps the last run held its students to (numbers), and what the study file
        # gave for them where a cap was a fraction of the teacher (``teacher/3``), else None
        "caps": {
            k: v
            for k, v in ((study.user_attrs.get("config") or {}).get("caps") or {}).items()
            if v is not None
        },
        "caps_given": study.user_attrs.get("caps_given"),
    }


def stopped_under_cap(study: optuna.Study, front: list[dict]) -> dict | None:
    """With a cap on the study's (first) size objective: the students larger than the front's
    largest and within the cap that MO-ASHA stopped at a rung, largest first — where a user's
    budget lies, read once at low fidelity (``export --trial N`` retrains one to the end).
    None without such a cap or a front (``pareto_rows``)."""
    size = size_objective(study)
    cap_key = objs.objective(size).cap_key if size else None
    cap = (study.user_attrs.get("config") or {}).get("caps", {}).get(cap_key)
    if cap is None or not front:
        return None
    largest = max(r[size] for r in front)
    key = objs.objective(size).result_key
    stopped = [
        {
            "trial": t.number,
            size: t.user_attrs[key],
            "accuracy": t.user_attrs.get("val_accuracy"),  # at the rung that stopped it
            "epochs": t.user_attrs.get("epochs"),
        }
        for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
        if t.user_attrs.get(key) is not None and largest < t.user_attrs[key] <= cap
    ]
    stopped.sort(key=lambda r: -r[size])
    return {"size": size, "cap": cap, "front_largest": largest, "trials": stopped}


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        if v is not None:
            counts[str(v)] = counts.get(str(v), 0) + 1
    return dict(sorted(counts.items()))


def trials_frame(study: optuna.Study):
    """All trials as a pandas DataFrame (one row a trial, JSON-able columns)."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                **{f"param_{k}": v for k, v in t.params.items()},
                "val_accuracy": a.get("val_accuracy"),
                "params": a.get("params"),
                "flops": a.get("flops"),
                "latency_ms": a.get("latency_ms"),
                "epochs": a.get("epochs"),
                "max_epochs": a.get("max_epochs"),
                "train_seconds": a.get("train_seconds"),
                "arch_seed": a.get("arch_seed"),
                "curve": a.get("curve"),
                "failure": a.get("failure"),
                "traceback": a.get("traceback"),
                "started": t.datetime_start.isoformat() if t.datetime_start else None,
                "finished": t.datetime_complete.isoformat() if t.datetime_complete else None,
            }
        )
    return pd.DataFrame(rows)
