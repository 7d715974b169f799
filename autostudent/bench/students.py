"""``autostudent bench students``: the search's students at final fidelity.

The search ranks students by a cheap proxy (a few epochs on a training subset, MO-ASHA); a user
keeps the one export retrains in full. This bench retrains, with export's recipe over seeds,
the study's front and a sample of its dominated complete trials — chosen by a rule fixed before
any run: the front, then dominated trials spread evenly over the proxy-accuracy ranking — and
the hand-designed baselines at the front's sizes (``autostudent baselines``). It reports how
well the proxy ranks students (Kendall tau, Spearman rho between proxy accuracy and mean test
accuracy), the front in test accuracy and its hypervolume beside the baselines' (the study's
reference), each front student's margin over the best baseline of at most its size, and, at
1/10 and 1/40 of the teacher's size, the front student the search itself rates best there
(proxy accuracy — never the test split) against the baselines, with what KD adds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from autostudent import baselines as bl
from autostudent.export import gap_closed
from autostudent.final_runs import Recipe, groups, stored
from autostudent.pareto import hypervolume, pareto_mask
from autostudent.study import pareto_rows

FRACTIONS = (10, 40)  # the teacher fractions the targets name: 1/10 and 1/40 of its params


def pick_students(study, k: int) -> list[int]:
    """The front (smallest first), then dominated complete trials evenly spread over the proxy
    accuracy ranking, until ``k`` students. A dominated trial whose architecture (params and
    FLOPs) is already picked is skipped: the same net with other KD settings (or with KD off,
    where it trains identically) would count one student twice in the rank correlation."""
    from optuna.trial import TrialState

    front = [r["trial"] for r in pareto_rows(study)]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    rest = sorted(
        (
            t
            for t in trials.values()
            if t.state == TrialState.COMPLETE
            and t.number not in front
            and "spec" in t.user_attrs
            and "kd_loss" in t.params
        ),
        key=lambda t: (-t.user_attrs["val_accuracy"], t.number),
    )
    return spread_picks(
        [(n, _architecture(trials[n])) for n in front],
        [(t.number, _architecture(t)) for t in rest],
        k,
    )


def _architecture(trial) -> tuple:
    return (trial.user_attrs.get("params"), trial.user_attrs.get("flops"))


def spread_picks(front: Sequence[tuple[int, tuple]], ranked: Sequence[tuple[int, tuple]], k: int):
    """``front``'s trial numbers, then up to ``k`` in all from ``ranked`` (best proxy first),
    evenly spaced over its ranking, one trial per architecture not already picked."""
    import numpy as np

    seen = {arch for _, arch in front}
    distinct = []
    for number, arch in ranked:
        if arch not in seen:
            seen.add(arch)
            distinct.append(number)
    room = max(0, k - len(front))
    if room >= len(distinct):
        return [n for n, _ in front] + distinct
    picks = np.linspace(0, len(distinct) - 1, room).round().astype(int).tolist()
    return [n for n, _ in front] + [distinct[i] for i in sorted(set(picks))]


def rank_correlation(proxy: Sequence[float], final: Sequence[float]) -> dict:
    from scipy.stats import kendalltau, spearmanr

    if len(proxy) < 3:
        return {"kendall_tau": None, "spearman_rho": None}
    return {
        "kendall_tau": float(kendalltau(proxy, final).statistic),
        "spearman_rho": float(spearmanr(proxy, final).statistic),
    }


def _front(points: list[dict]) -> list[dict]:
    if not points:
        return []
    import numpy as np

    pts = np.array([[p["mean"], p["params"]] for p in points], dtype=float)
    keep = pareto_mask(pts, [True, False])
    return sorted((p for p, k in zip(points, keep, strict=True) if k), key=lambda p: p["params"])


def _hv(front: list[dict], reference: float | None) -> float | None:
    if not front or not reference:
        return None
    return hypervolume([p["mean"] for p in front], [[p["params"] for p in front]], [reference])


def evidence(study, runs: list[dict], students: Sequence[int], recipe: Recipe) -> dict:
    """What the stored runs of ``students`` (and the baselines) say, for one recipe."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    rec = {
        "epochs": recipe.epochs,
        "batch_size": recipe.batch_size,
        "lr": recipe.lr,
        "weight_decay": recipe.weight_decay,
        "augment": recipe.augment,
    }
    gs = [g for g in groups(runs) if g["recipe"] == rec]
    searched = {g["trial"]: g for g in gs if g["role"] == "searched" and g["kd"]}
    rows = [
        {
            "trial": n,
            "params": searched[n]["params"],
            "proxy_accuracy": trials[n].user_attrs["val_accuracy"],
            "mean": searched[n]["test_accuracy_mean"],
            "sd": searched[n]["test_accuracy_sd"],
            "seeds": searched[n]["seeds"],
        }
        for n in students
        if n in searched
    ]
    corr = rank_correlation([r["proxy_accuracy"] for r in rows], [r["mean"] for r in rows])
    base_points = [
        {"family": g["name"], "params": g["params"], "kd": g["kd"], "mean": g["test_accuracy_mean"]}
        for g in gs
        if g["role"] == "baseline"
    ]
    reference = study.user_attrs.get("hv_reference", {}).get("params")
    test_front, base_front = _front(rows), _front(base_points)
    teacher = study.user_attrs.get("teacher", {})
    by_trial = {m["trial"]: m for m in bl.margins(runs) if m["recipe"] == rec}
    front = [r["trial"] for r in pareto_rows(study)]
    return {
        "n_students": len(rows),
        **corr,
        "students": rows,
        "test_front": test_front,
        "test_front_hypervolume": _hv(test_front, reference),
        "baseline_front": base_front,
        "baseline_front_hypervolume": _hv(base_front, reference),
        "hypervolume_reference": {"params": reference},
        "front_margins": [by_trial[n] for n in front if n in by_trial],
        "margins": [
            at_fraction(f, trials, front, by_trial, teacher.get("params")) for f in FRACTIONS
        ],
        "kd_gap": kd_gap_closed(
            at_fraction(10, trials, front, by_trial, teacher.get("params")),
            teacher.get("test_accuracy"),
        ),
        "teacher": {"params": teacher.get("params"), "test_accuracy": teacher.get("test_accuracy")},
    }


def at_fraction(
    fraction: int, trials: dict, front: Sequence[int], by_trial: dict, teacher_params: int | None
) -> dict:
    """The front student the search rates best (proxy accuracy) at ≤ 1/fraction of the teacher,
    against the best baseline of at most its size."""
    out: dict = {"teacher_fraction": f"1/{fraction}", "student": None, "baseline": None}
    if not teacher_params:
        return {**out, "why": "the study stores no teacher size"}
    rows = [
        {
            "trial": n,
            "params": trials[n].user_attrs["params"],
            "accuracy": trials[n].user_attrs["val_accuracy"],
        }
        for n in front
    ]
    pick = bl.pick_at_fraction(rows, teacher_params, fraction)
    if pick is None:
        return {
            **out,
            "why": f"no front student of at most {teacher_params / fraction:,.0f} params",
        }
    n = pick["trial"]
    m = by_trial.get(n)
    if m is None:
        return {**out, "why": f"trial {n} was not retrained with this recipe"}
    return {
        **out,
        "student": {"trial": n, "params": m["params"], "mean": m["mean"], "sd": m["sd"]},
        "no_kd": m["no_kd"],
        "baseline": m["baseline"],
        "margin_pt": m["margin_pt"],
        "seeds": m["seeds"],
        "epochs": m["epochs"],
    }


def kd_gap_closed(m: dict, teacher_test: float | None) -> dict:
    """The share of the no-KD student's gap to the teacher that KD closes."""
    student, no_kd = m.get("student"), m.get("no_kd")
    if student is None or no_kd is None or teacher_test is None:
        return {"share": None, "why": m.get("why", "no no-KD runs or no teacher test accuracy")}
    gain = student["mean"] - no_kd["mean"]
    closed = gap_closed({"mean": gain}, no_kd, teacher_test)  # export's, the card's figure
    return {
        "share": closed and closed["share"],
        "kd_gain_pt": 100 * gain,
        "gap_pt": 100 * (teacher_test - no_kd["mean"]),
        "trial": student["trial"],
        "teacher_test_accuracy": teacher_test,
        **({} if closed else {"why": "the student matches the teacher without KD"}),
    }


def bench_students(
    storage: str,
    study_name: str,
    *,
    top: int = 12,
    seeds: int = 3,
    epochs: int = 5,
    augment: str = "none",
    families: Sequence[str] = bl.DEFAULT_FAMILIES,
    workers: int = 1,
    threads: int = 1,
    raw_dir=None,
    report_only: bool = False,
    teacher=None,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Run what is not stored yet (baselines and front with and without KD, the sample with KD),
    then read the evidence back; ``report_only``: train nothing, read what is stored so far.
    ``device``: where the runs train when not where the search trained."""
    from autostudent import study as studydb
    from autostudent.errors import UserError
    from autostudent.final_training import run_baselines

    if top < 3:
        raise UserError("--top: rank correlation needs at least 3 students")
    study = studydb.load(storage, study_name)
    students = pick_students(study, top)
    front = {r["trial"] for r in pareto_rows(study)}
    # the front with and without KD, the baselines at its sizes, the sample with KD
    result = run_baselines(
        storage,
        study_name,
        families=families,
        seeds=seeds,
        epochs=epochs,
        augment=augment,
        sample=[n for n in students if n not in front],
        workers=workers,
        threads=threads,
        raw_dir=raw_dir,
        dry_run=report_only,
        teacher=teacher,
        device=device,
        log=log,
    )
    b = _config(study, storage).budget
    recipe = Recipe(epochs, b.batch_size, b.lr, b.weight_decay, augment)
    found = evidence(study, list(stored(study).values()), students, recipe)
    found["kd_gap_closed"] = found["kd_gap"]["share"]
    return {
        "study": study_name,
        "runs_planned": result["planned"],
        "runs_to_go": result["to_run"],
        "recipe": result["recipe"],
        "seeds": list(range(seeds)),
        "baseline_kd": result["kd"],
        "families": list(families),
        **found,
    }


def _config(study, storage: str):
    from autostudent.export import study_config

    return study_config(study, storage, needs_teacher=False)
