"""Issue 16's evidence in one file: ``summary.json`` here, in the schema the issue asks for
(``margins``, ``kd_gap_closed``, ``kendall_tau``, ``n_students``, the commands), assembled from
the rounds that measured it. Nothing is measured or chosen here: each figure is copied from the
round whose pre-registered rule made it, and each names that round's directory.

- ``margins``: at ≤ 1/10 of the teacher, round 4's headline (``../students_e40_cap10``: the
  search with the cap, its export against both families sized to it and round 2's) and, beside
  it, its further search seeds' (``../students_e40_cap10/seed1``, ``seed2``: the lowest of
  their margins); at ≤ 1/40,
  round 2's (``../students_e40``: its export against the families sized to the front and to it)
  round 3's (``../students_e40_cap40``: the search with the cap at 1/40, its headline) and
  round 5's searches (``../students_e40_cap40/current/seedN``: the cap with the demo's settings
  and the rung read as the model, each its lowest margin) and round 6's that have run
  (``../students_e40_cap40/rungauto/seedN``: the same with ``rung_average: auto``, the default).
- ``margins_rerank5``: the same nine budget searches (round 4's three, rounds 5-6's six) exported
  with ``--rerank 5`` instead of 3 (``../students_rerank5``, whose rule made it the README's
  recommendation), each its lowest margin, with the rule's counts (``rerank5_met``).
- ``kd_gap_closed``: the ≤ 1/10 export's KD gain over the share of its no-KD gap to the
  teacher (the same retrains: seeds 0-2, KD and not); ``kd_gap_by_search`` has both searches'.
  ``kd_gap_function_matching``: the same student's share with function matching, one entry per
  phase (100 epochs, then 300; ``../students_e40_cap10/kd_function_matching``,
  pre-registered; export's own ``kd_gap_closed``).
- ``kendall_tau``, ``n_students``: the demo's current proxy (6 epochs, rung at 3:
  ``../students_tau6``), else the 3-epoch one (``../students_tau12``), else round 2;
  ``kendall_tau_by_proxy`` has each proxy's that was measured over 12 students.

  .venv/bin/python studies/results/students/evidence.py > studies/results/students/summary.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent
FRACTIONS = {30_807: "1/10", 7_701: "1/40"}  # the budget caps: teacher params / 10, / 40
TEACHER = {"path": "studies/results/teacher_e40", "params": 308_074, "test_accuracy": 0.9431}


def load(path: str) -> dict:
    return json.loads((RESULTS / path).read_text())


def margin(
    fraction: str, source: str, student: dict, baseline: dict, margin_pt: float, search_seed=0
) -> dict:
    keep = ("trial", "params", "mean", "sd")
    return {
        "teacher_fraction": fraction,
        "search_seed": search_seed,
        "student": {k: student[k] for k in keep},
        "baseline": {k: baseline[k] for k in ("family", "params", "kd", "mean", "sd")},
        "margin_pt": round(margin_pt, 2),
        "seeds": student["seeds"],
        "epochs": 5,
        "source": source,
    }


def _lowest(by_set: dict, headline: float) -> dict:
    """The lowest margin over a search's baseline sets, checked against its committed headline."""
    low = min(
        (m for m in by_set.values() if m["margin_pt"] is not None), key=lambda m: m["margin_pt"]
    )
    assert low["margin_pt"] == headline
    return low


def lowest(fraction: str, source: str, search_seed: int) -> dict:
    """One search seed's headline: the lowest of its margins over the baseline sets it read."""
    summary = load(f"{source}/summary.json")
    low = _lowest(summary["margins"], summary["headline_margin_pt"])
    return margin(
        fraction, source, summary["student"], low["baseline"], low["margin_pt"], search_seed
    )


def margins() -> list[dict]:
    round4 = load("students_e40_cap10/summary.json")
    best4 = min(
        (round4["this_study_baselines"], round4["round2_baselines"]), key=lambda m: m["margin_pt"]
    )
    assert best4["margin_pt"] == round4["headline_margin_pt"]
    round2 = next(
        e for e in load("students_e40/exports.json")["exports"] if e["teacher_fraction"] == "1/40"
    )
    best2 = round2["sized_to_student"]
    assert best2["margin_pt"] == round2["headline_margin_pt"]
    round3 = load("students_e40_cap40/summary.json")
    best3 = round3["headline"]
    # a round's further search seeds, each its lowest margin: round 4's at 1/10, and at 1/40
    # rounds 5 and 6 (the cap with the demo's settings; the rung read as the model, then with
    # the default `rung_average: auto`), those that have run
    further = [lowest("1/10", f"students_e40_cap10/seed{seed}", seed) for seed in (1, 2)]
    rounds56 = [
        lowest("1/40", f"students_e40_cap40/{folder}/seed{seed}", seed)
        for folder in ("current", "rungauto")
        for seed in (0, 1, 2)
        if (RESULTS / f"students_e40_cap40/{folder}/seed{seed}/summary.json").exists()
    ]
    return [
        margin(
            "1/10", "students_e40_cap10", round4["student"], best4["baseline"], best4["margin_pt"]
        ),
        *further,
        margin("1/40", "students_e40", round2["student"], best2["baseline"], best2["margin_pt"]),
        margin(
            "1/40", "students_e40_cap40", round3["student"], best3["baseline"], best3["margin_pt"]
        ),
        *rounds56,
    ]


def margins_rerank5() -> list[dict]:
    """Each budget search's ``--rerank 5`` export, its lowest margin, in ``margins``' schema."""
    sys.path.insert(0, str(RESULTS / "students_rerank5"))
    import rerank5  # its nine searches: where each lives, its cap

    summary = load("students_rerank5/summary.json")
    assert summary["complete"]
    rows = []
    for name, search in summary["searches"].items():
        arm, export = search["rerank5"], rerank5.export_dir(rerank5.SEARCHES[name], 5)
        low = _lowest(arm["margins"], arm["headline_margin_pt"])
        seeds = json.loads((export / "metrics.json").read_text())["seeds"]
        student = {"trial": arm["trial"], "params": arm["params"], "mean": arm["test_mean"],
                   "sd": arm["test_sd"], "seeds": seeds["seeds"]}  # fmt: skip
        fraction = FRACTIONS[rerank5.SEARCHES[name]["cap"]]
        source = str(export.relative_to(RESULTS))
        rows.append(
            margin(fraction, source, student, low["baseline"], low["margin_pt"], int(name[-1]))
        )
    return rows


def kd_gap(source: str = "students_e40_cap10") -> dict:
    metrics = load(f"{source}/export-30807/metrics.json")
    seeds = metrics["seeds"]
    kd, no_kd = seeds["kd"]["mean"], seeds["no_kd"]["mean"]
    gap = TEACHER["test_accuracy"] - no_kd
    return {
        "share": (kd - no_kd) / gap,
        "kd_gain_pt": 100 * (kd - no_kd),
        "gap_pt": 100 * gap,
        "student": f"the ≤ 1/10 export ({source}, trial {metrics['trial']}, its own KD settings)",
        "seeds": seeds["seeds"],
        "source": f"{source}/export-30807/metrics.json",
    }


def kd_gap_function_matching(out: str) -> dict:
    source = f"students_e40_cap10/kd_function_matching/{out}"
    metrics = load(f"{source}/metrics.json")
    seeds = metrics["seeds"]
    return {
        **metrics["kd_gap_closed"],
        "kd_gain_pt": 100 * metrics["kd_gain"]["mean"],
        "kd_gain_sd_pt": 100 * metrics["kd_gain"]["sd"],
        "student": f"the ≤ 1/10 export's student (trial {metrics['trial']}), function matching: "
        f"--augment mixup --kd kd,1,1.0 --epochs {metrics['epochs']}",
        "seeds": seeds["seeds"],
        "source": f"{source}/metrics.json",
        "command": "the command in students_e40_cap10/kd_function_matching/README.md",
    }


# bench students rounds that ranked a search's students, the demo's current proxy first
RANKINGS = {
    "students_tau6": "6 epochs, one rung at 3 (the demo's settings since coverage/fidelity6)",
    "students_tau12": "3 epochs, first rung at 2 (coverage/grace2)",
    "students_e40": "3 epochs, first rung at 1 (round 2)",
}


def rankings() -> list[dict]:
    """Each round's rank correlation that has 12 students (round 2's when none has)."""
    found = []
    for source, proxy in RANKINGS.items():
        path = RESULTS / source / "summary.json"
        if path.exists():
            summary = json.loads(path.read_text())
            if summary.get("n_students", 0) >= 12 or (source == "students_e40" and not found):
                found.append(
                    {
                        "proxy": proxy,
                        "kendall_tau": summary["kendall_tau"],
                        "spearman_rho": summary["spearman_rho"],
                        "n_students": summary["n_students"],
                        "source": source,
                        "command": summary["command"],
                    }
                )
    if not found:
        raise FileNotFoundError("no bench students summary")
    return found


def main() -> dict:
    ranked = rankings()
    rank = ranked[0]
    gap = kd_gap()
    return {
        "teacher": TEACHER,
        "margins": margins(),
        "margins_rerank5": margins_rerank5(),
        "rerank5_met": load("students_rerank5/summary.json")["met"],
        "kd_gap_closed": gap["share"],
        "kd_gap": gap,
        "kd_gap_by_search": [gap, *(kd_gap(f"students_e40_cap10/seed{n}") for n in (1, 2))],
        "kd_gap_function_matching": [
            kd_gap_function_matching(out) for out in ("export-e100", "export-e300")
        ],
        "kendall_tau": rank["kendall_tau"],
        "spearman_rho": rank["spearman_rho"],
        "n_students": rank["n_students"],
        "ranking_source": rank["source"],
        "kendall_tau_by_proxy": ranked,
        "commands": [
            "studies/results/students_e40_cap10/run.sh",
            "studies/results/students_e40_cap10/run_seed.sh 1",
            "studies/results/students_e40_cap10/run_seed.sh 2",
            "studies/results/students_e40/run.sh",
            "studies/results/students_e40_cap40/run.sh",
            "studies/results/students_e40_cap40/current/run_seed.sh N  (N: each seed of round 5)",
            "ROUND=studies/results/students_e40_cap40/rungauto "
            "studies/results/students_e40_cap40/current/run_seed.sh N  (each seed of round 6)",
            *(f"studies/results/{r['source']}/run.sh" for r in ranked),
            *(r["command"] for r in ranked),
            "studies/results/students_rerank5/rerank5.py --run all",
            "studies/results/students_rerank5/rerank5.py --summary"
            " > studies/results/students_rerank5/summary.json",
            "studies/results/students/evidence.py > studies/results/students/summary.json",
        ],
        "round1": "round1.json (the 10-epoch demo teacher's bench students, superseded)",
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
