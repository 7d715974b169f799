"""What the dashboard shows, read from a study database alone: one ``StudyData`` per study.

Everything is computed here once per load (trials table, fronts per size axis, hypervolume
history, parameter importances), so the figure functions stay pure and the live view can reuse a
load while the study has not changed.
"""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from autostudent import final_runs
from autostudent import objectives as objs
from autostudent import study as studydb
from autostudent.pareto import hypervolume, pareto_mask

KD_PARAMS = ("kd_loss", "kd_temperature", "kd_alpha")
# fANOVA needs a few trials to say anything; below this the view explains instead of guessing.
MIN_TRIALS_FOR_IMPORTANCE = 4


@dataclass
class StudyData:
    name: str
    storage: str  # with any password masked
    objectives: list[str]
    teacher: dict
    hv_reference: dict
    caps: dict  # the study's hard caps, {max_params: …, max_flops: …, max_latency_ms: …}
    summary: dict  # studydb.summary: states, front, hypervolume, fallbacks
    trials: pd.DataFrame  # one row per trial, see `trials_table`
    hv_history: pd.DataFrame  # finished (count) → hypervolume, in completion order
    importances: dict[str, dict[str, float]] = field(default_factory=dict)  # objective → param
    importance_note: str = ""  # why importances are missing, when they are
    # final-fidelity runs (baselines and retrained students) over seeds: final_runs.groups
    final_groups: list[dict] = field(default_factory=list)

    @property
    def size_objective(self) -> str:
        """The size axis the study optimises (params unless it optimises only another one)."""
        sizes = [o for o in self.objectives if o in objs.SIZES]
        return sizes[0] if sizes else "params"


class StudySource:
    """One study of one database, opened once: a cheap ``fingerprint`` that changes whenever a
    trial is added, changes state or reports an epoch, and the full ``load``."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.study = studydb.load(url, name)  # a bad URL or name is a UserError here

    def fingerprint(self) -> tuple:
        return tuple(
            (t.number, t.state.value, len(t.user_attrs.get("curve") or ()))
            for t in self.study.get_trials(deepcopy=False)
        )

    def load(self) -> StudyData:
        return study_data(self.study, studydb.safe_url(self.url))


def load_study_data(url: str, name: str) -> StudyData:
    return StudySource(url, name).load()


def study_data(study: optuna.Study, storage: str) -> StudyData:
    trials = study.get_trials(deepcopy=False)
    objectives = studydb.objectives_of(study)
    refs = study.user_attrs.get("hv_reference", {})
    table = trials_table(trials)
    for size in objs.SIZES:
        table[f"front_{size}"] = front_mask(table, size)
    importances, note = param_importances(study, objectives)
    return StudyData(
        name=study.study_name,
        storage=storage,
        objectives=objectives,
        teacher=study.user_attrs.get("teacher", {}),
        hv_reference=refs,
        caps=(study.user_attrs.get("config") or {}).get("caps") or {},
        summary=studydb.summary(study),
        trials=table,
        hv_history=hypervolume_history(table, objectives, refs),
        importances=importances,
        importance_note=note,
        final_groups=final_runs.groups(final_runs.stored(study).values()),
    )


def trials_table(trials: list[FrozenTrial]) -> pd.DataFrame:
    """One row per trial: state, metrics, KD settings, architecture in words, worker, times."""
    rows = []
    for t in trials:
        a = t.user_attrs
        spec = a.get("spec")
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "accuracy": a.get("val_accuracy"),
                "params": a.get("params"),
                "flops": a.get("flops"),
                "latency_ms": a.get("latency_ms"),
                "epochs": a.get("epochs"),
                "max_epochs": a.get("max_epochs"),
                "curve": a.get("curve") or [],
                "kd_loss": t.params.get("kd_loss"),
                "kd_temperature": t.params.get("kd_temperature"),
                "kd_alpha": t.params.get("kd_alpha"),
                "point": {k: v for k, v in t.params.items() if k not in KD_PARAMS},
                "arch": describe_arch(spec) if spec else "",
                "spec": spec,
                "failure": failure_text(a),
                "traceback": a.get("traceback") or "",
                "fallback": a.get("sampler_fallback") or "",
                "feasible": all(v <= 0 for v in (t.constraints or {}).values()),
                "worker": a.get("worker") or "driver",
                "start": t.datetime_start,
                "complete": t.datetime_complete,
            }
        )
    columns = [
        "number",
        "state",
        "accuracy",
        "params",
        "flops",
        "latency_ms",
        "epochs",
        "max_epochs",
        "curve",
        "kd_loss",
        "kd_temperature",
        "kd_alpha",
        "point",
        "arch",
        "spec",
        "failure",
        "traceback",
        "fallback",
        "feasible",
        "worker",
        "start",
        "complete",
    ]
    return pd.DataFrame(rows, columns=columns)


TRACEBACK_LINES = 6  # of a failed trial's traceback, in its hover: the innermost frames


def failure_text(attrs: dict) -> str:
    """A failed trial's reason as its hover shows it (HTML): with the innermost lines of its
    traceback when an unexpected error left one (where it happened, not only what)."""
    reason = html.escape(attrs.get("failure") or "")
    lines = (attrs.get("traceback") or "").rstrip().splitlines()[1:-1]  # no header, no reason
    frames = [html.escape(line.strip()[:120]) for line in lines[-TRACEBACK_LINES:]]
    return "<br>".join([reason, *frames])


def describe_arch(spec: dict) -> str:
    """An architecture in a few words, e.g. 'nago · cells 2+2+1 · 14 ops · 8/16/32 ch'."""
    channels = "/".join(str(s["channels"]) for s in spec.get("stages", []))
    if spec.get("kind") == "nago":
        cells = "+".join(str(len(s["cells"])) for s in spec["stages"])
        ops = sum(unit["nodes"] for cell in spec["cells"] for unit in cell["units"])
        units = sum(len(cell["units"]) for cell in spec["cells"])
        return f"nago · cells {cells} · {units} units · {ops} ops · {channels} ch"
    if spec.get("kind") == "chain":
        depth = "+".join(str(s["depth"]) for s in spec["stages"])
        return f"chain · depth {depth} · {channels} ch"
    return str(spec.get("kind", "?"))


def front_mask(table: pd.DataFrame, size: str) -> pd.Series:
    """COMPLETE, feasible trials not dominated in (accuracy up, ``size`` down)."""
    done = (table["state"] == "COMPLETE") & table["feasible"] & table[size].notna()
    mask = pd.Series(False, index=table.index)
    if done.any():
        points = table.loc[done, ["accuracy", size]].to_numpy(dtype=float)
        mask[done] = pareto_mask(points, [True, False])
    return mask


def hypervolume_history(table: pd.DataFrame, objectives: list[str], refs: dict) -> pd.DataFrame:
    """The study's hypervolume after each finished trial, in the order trials finished.

    Incremental: the front so far plus the new point is all a new hypervolume needs."""
    sizes = [o for o in objectives if o in objs.SIZES]
    finished = table[table["state"].isin(["COMPLETE", "PRUNED"])].sort_values("complete")
    rows, front = [], np.zeros((0, 1 + len(sizes)))
    for count, (_, t) in enumerate(finished.iterrows(), start=1):
        if t["state"] == "COMPLETE" and t["feasible"] and all(s in refs for s in sizes):
            point = np.array([[t["accuracy"], *(t[s] for s in sizes)]], dtype=float)
            front = np.concatenate([front, point])
            front = front[pareto_mask(front, [True] + [False] * len(sizes))]
        hv = (
            hypervolume(
                front[:, 0], [front[:, j + 1] for j in range(len(sizes))], [refs[s] for s in sizes]
            )
            if len(front)
            else 0.0
        )
        rows.append({"finished": count, "trial": t["number"], "hypervolume": hv})
    return pd.DataFrame(rows, columns=["finished", "trial", "hypervolume"])


def param_importances(
    study: optuna.Study, objectives: list[str]
) -> tuple[dict[str, dict[str, float]], str]:
    """fANOVA importance of each searched parameter for each objective (log of sizes), over the
    COMPLETE trials; a note instead when there are too few of them."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}, (
            f"parameter importances need {MIN_TRIALS_FOR_IMPORTANCE} complete trials "
            f"({len(complete)} so far)"
        )
    result: dict[str, dict[str, float]] = {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    for i, name in enumerate(objectives):
        log = objs.objective(name).log_scale

        def target(t: FrozenTrial, i: int = i, log: bool = log) -> float:
            return math.log(t.values[i]) if log and t.values[i] > 0 else t.values[i]

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result[name] = dict(
                    optuna.importance.get_param_importances(
                        study, evaluator=evaluator, target=target
                    )
                )
        except (RuntimeError, ValueError) as exc:  # e.g. every param fixed
            return {}, f"parameter importances unavailable: {exc}"
    return result, ""
