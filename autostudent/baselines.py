"""The comparison a student search must win: searched students against hand-designed ones of at
most their size, trained the same way (export's recipe), over seeds.

``plan`` fixes, before any run, which students are trained — the study's front (each with its
own KD settings, with and without KD) and each hand-designed family sized to every front
student's parameter count (with the KD settings of the study's most accurate trial, and without
KD) — so that nothing is chosen on the test split. ``margins`` reads the stored runs back:
each searched student's mean test accuracy minus the best baseline mean of at most its size,
the same recipe, over its seeds. Pure functions over plain records: ``status``, the dashboard
and the model card read them without torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from autostudent.errors import UserError
from autostudent.final_runs import KD, Recipe, RunPlan, groups

DEFAULT_FAMILIES = ("resnet", "mobilenetv2")


def parse_sizes(text: str) -> list[int] | None:
    """``auto`` → None (the front's sizes); ``5000,20000`` → sizes."""
    if text.strip() == "auto":
        return None
    try:
        sizes = [int(s.replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--sizes: {text!r} is not 'auto' or a list of integers") from None
    if not sizes or any(s < 1 for s in sizes):
        raise UserError(f"--sizes: {text!r}: give positive parameter counts")
    return sorted(set(sizes))


def trial_kd(trial) -> KD:
    p = trial.params
    return KD(p["kd_loss"], float(p["kd_temperature"]), float(p["kd_alpha"]))


def baseline_kd(study) -> tuple[KD, int]:
    """The KD settings a baseline is distilled with: those of the study's most accurate complete
    trial (the search's best KD settings, so the baselines get what the search learned), and
    that trial's number."""
    from optuna.trial import TrialState

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "kd_loss" in t.params and t.user_attrs.get("val_accuracy") is not None
    ]
    if not done:
        raise UserError(f"--study: {study.study_name!r} has no complete trial yet")
    best = max(done, key=lambda t: (t.user_attrs["val_accuracy"], -t.number))
    return trial_kd(best), best.number


def searched_plans(
    study, trial_numbers: Sequence[int], seeds: Sequence[int], recipe: Recipe, *, no_kd: bool
) -> list[RunPlan]:
    """Each trial's own architecture and KD settings (and, with ``no_kd``, the same net without
    KD), over seeds."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    plans = []
    for number in trial_numbers:
        t = trials[number]
        spec, kd = t.user_attrs["spec"], trial_kd(t)
        for with_kd in (True, False) if no_kd else (True,):
            plans += [
                RunPlan(
                    "searched",
                    f"trial {number}",
                    spec,
                    int(t.user_attrs["params"]),
                    kd if with_kd else None,
                    seed,
                    recipe,
                    trial=number,
                )
                for seed in seeds
            ]
    return plans


def baseline_plans(
    families: Sequence[str],
    sizes: Sequence[int],
    seeds: Sequence[int],
    recipe: Recipe,
    kd: KD,
    *,
    in_channels: int,
    num_classes: int,
    input_size: int,
) -> list[RunPlan]:
    """Each family sized to at most each size, with ``kd`` and without, over seeds. Two sizes
    that give a family the same member share its runs."""
    from autostudent.families import NoMember, sized_spec, spec_params

    plans = []
    for family in families:
        for size in sizes:
            try:
                spec = sized_spec(
                    family,
                    size,
                    in_channels=in_channels,
                    num_classes=num_classes,
                    input_size=input_size,
                )
            except NoMember:
                continue  # nothing to compare there
            params = spec_params(spec)
            for with_kd in (kd, None):
                plans += [
                    RunPlan(
                        "baseline", family, spec, params, with_kd, seed, recipe, target_params=size
                    )
                    for seed in seeds
                ]
    return plans


def pick_at_fraction(front_rows: Sequence[dict], teacher_params: int | None, fraction: int):
    """The front student the search itself rates best (its proxy accuracy, never the test split)
    at ≤ 1/fraction of the teacher's params; None when there is none that small."""
    if not teacher_params:
        return None
    fits = [r for r in front_rows if r["params"] <= teacher_params / fraction]
    return max(fits, key=lambda r: (r["accuracy"], -r["trial"]), default=None)


def run_order(plans: Sequence[RunPlan], first_trials: Sequence[int]) -> list[RunPlan]:
    """The students of ``first_trials`` and the baselines sized to them first, over every seed
    (the margins at the target fractions get all their seeds before anything else), then the
    rest seed by seed (one seed of everything lands before the second), by size."""
    first_sizes = {p.params for p in plans if p.trial in first_trials}

    def rank(p: RunPlan) -> tuple:
        target = p.target_params if p.role == "baseline" else p.params
        early = p.trial in first_trials or (p.role == "baseline" and target in first_sizes)
        return (
            not early,
            p.seed,
            p.role == "searched" and p.trial is not None and not early,
            target or 0,
            p.role,
            p.name,
            p.kd is None,
        )

    return sorted(plans, key=rank)


# --- reading the evidence ---------------------------------------------------------------------


def best_baseline(baselines: Iterable[dict], params: int, recipe: dict) -> dict | None:
    """The most accurate baseline group (by mean; KD or not) of at most ``params`` and the same
    recipe. Picking the best baseline by its test mean favours the baselines: the comparison is
    conservative for the searched student."""
    fits = [
        g
        for g in baselines
        if g["role"] == "baseline" and g["params"] <= params and g["recipe"] == recipe
    ]
    return max(fits, key=lambda g: (g["test_accuracy_mean"], -g["params"]), default=None)


def unsized_families(runs: Iterable[dict], params: int, recipe: dict) -> list[dict]:
    """The families among the stored baselines of ``recipe`` that were never sized to ``params``:
    each as the member (``{family, params}``) that ``baselines --sizes params`` would train. A
    student off the front, or larger than the front's largest, is compared only with smaller
    hand-designed students until then, which can flatter it (measured: a 27K student +0.93 pt
    over an 11K ResNet, +0.17 over the 27K ones)."""
    from autostudent.families import NoMember, sized_spec, spec_params

    same = [r for r in runs if r["role"] == "baseline" and r["recipe"] == recipe]
    have = {(r["family"], r["params"]) for r in same}
    out = []
    for family in sorted({r["family"] for r in same}):
        shape = next(r["spec"] for r in same if r["family"] == family)
        try:
            spec = sized_spec(
                family,
                params,
                in_channels=shape["in_channels"],
                num_classes=shape["num_classes"],
                input_size=shape["input_size"],
            )
        except NoMember:
            continue  # no member this small: nothing to size
        except UserError:  # your own family, not importable here: its member is unknown
            out.append({"family": family, "params": None})
            continue
        n = spec_params(spec)
        if (family, n) not in have:
            out.append({"family": family, "params": n})
    return out


def baseline_summary(group: dict) -> dict:
    """A baseline group as margins, the model card and summary.json name it."""
    return {
        "family": group["name"],
        "params": group["params"],
        "kd": group["kd"],
        "mean": group["test_accuracy_mean"],
        "sd": group["test_accuracy_sd"],
        "seeds": group["seeds"],
    }


def margins(runs: Iterable[dict]) -> list[dict]:
    """Per searched student (its KD runs) and recipe: its mean ± sd, the best baseline of at most
    its size under the same recipe, and the margin in points (None without such a baseline)."""
    gs = groups(runs)
    out = []
    for g in gs:
        if g["role"] != "searched" or not g["kd"]:
            continue
        base = best_baseline(gs, g["params"], g["recipe"])
        no_kd = next(
            (
                h
                for h in gs
                if h["role"] == "searched"
                and h["trial"] == g["trial"]
                and not h["kd"]
                and h["recipe"] == g["recipe"]
            ),
            None,
        )
        out.append(
            {
                "trial": g["trial"],
                "params": g["params"],
                "epochs": g["epochs"],
                "recipe": g["recipe"],
                "seeds": g["seeds"],
                "mean": g["test_accuracy_mean"],
                "sd": g["test_accuracy_sd"],
                "no_kd": None
                if no_kd is None
                else {"mean": no_kd["test_accuracy_mean"], "sd": no_kd["test_accuracy_sd"]},
                "baseline": None if base is None else baseline_summary(base),
                "margin_pt": None
                if base is None
                else 100 * (g["test_accuracy_mean"] - base["test_accuracy_mean"]),
            }
        )
    return out


def margin_by_trial(runs: Iterable[dict]) -> dict[int, float | None]:
    """Each retrained trial's margin (what ``status`` and the dashboard's front table show): at
    the longest recipe that has a baseline of at most its size, else None. An export at a recipe
    no baseline ran (``export --epochs 15``) does not hide the margin ``baselines`` measured."""
    best: dict[int, tuple[tuple[bool, int], dict]] = {}  # trial → (its rank, its margin row)
    for m in margins(runs):
        rank = (m["margin_pt"] is not None, m["epochs"])
        if m["trial"] not in best or rank > best[m["trial"]][0]:
            best[m["trial"]] = (rank, m)
    return {t: m["margin_pt"] for t, (_, m) in best.items()}


def baseline_rows(runs: Iterable[dict]) -> list[dict]:
    """The baselines as ``status --json`` lists them."""
    return [
        {
            "family": g["name"],
            "params": g["params"],
            "flops": g["flops"],
            "kd": g["kd"],
            "kd_settings": g["kd_settings"],
            "epochs": g["epochs"],
            "augment": g["recipe"].get("augment", "none"),
            "seeds": g["seeds"],
            "test_accuracy_mean": g["test_accuracy_mean"],
            "test_accuracy_sd": g["test_accuracy_sd"],
        }
        for g in groups(runs)
        if g["role"] == "baseline"
    ]
