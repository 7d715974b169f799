"""Does a last rung at higher fidelity (6 epochs, first rung at 3) give the demo's search the
front users need? The design and the decision rule are fixed in README.md here, before any run.

Each search is the population's study file with only the study name, the storage, the seed,
``budget.epochs`` and ``search.grace_period`` changed, run through the Python API. The control
is ``../grace2``'s grace-2 arm (its committed reports). Resumable: a finished search's report
lands in ``<study>.json`` and is not run again.

  .venv/bin/python studies/results/coverage/fidelity6/fidelity6.py           # the 6 searches
  .venv/bin/python studies/results/coverage/fidelity6/fidelity6.py --report  # summary.json only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "grace2"))
import grace2  # noqa: E402  (one rule, one population list)

# prune_gap_proposals: the default when these searches ran (until 2026-12-05), said so that
# a rerun (gapfull --control15 among them) searches as they did
ARM = {"budget": {"epochs": 6}, "search": {"grace_period": 3, "prune_gap_proposals": True}}
CONTROL_GRACE = 2  # ../grace2's arm that was the demo's setting
CONTROL = f"grace{CONTROL_GRACE}"


def name(population: str, seed: int, tag: str = "e6g3") -> str:
    return f"{population}-{tag}-seed{seed}"


def storage(population: str, here: Path = HERE) -> str:
    return f"sqlite:///{here / population}.db"


def run(
    population: str,
    seed: int,
    *,
    timeout: float | None = None,
    tag: str = "e6g3",
    settings: dict = ARM,
    here: Path = HERE,
) -> None:
    """One search of 40 trials, or with ``timeout`` one stopped by the clock (as
    ``../timeout15``: no trial count; a run cut short by anything else starts again). Another
    round (``../gapfull``) passes its own ``tag``, ``settings`` and folder."""
    import optuna

    import autostudent

    study = name(population, seed, tag) + ("-15m" if timeout else "")
    out = here / f"{study}.json"
    if out.exists():
        return
    budget = {}
    if timeout:
        budget = {"n_trials": 100_000, "timeout": timeout}
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=study, storage=storage(population, here))
    autostudent.search(
        grace2.POPULATIONS[population],
        storage=storage(population, here),
        study=study,
        seed=seed,
        progress=False,
        **budget,
        **settings,
    )
    report = json.loads(
        subprocess.run(
            [sys.executable, str(grace2.REPORT), storage(population, here), study],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    report["stopped"] = autostudent.load(storage(population, here), study).status().get("stopped")
    out.write_text(json.dumps(report, indent=1))


def rows() -> list[dict]:
    found = []
    for population in grace2.POPULATIONS:
        for seed in grace2.SEEDS:
            arms = {
                "e6g3": HERE / f"{name(population, seed)}.json",
                CONTROL: grace2.HERE / f"{grace2.name(population, CONTROL_GRACE, seed)}.json",
            }
            for arm, path in arms.items():
                if path.exists():
                    found.append(
                        {"population": population, "seed": seed, "arm": arm, **grace2.read(path)}
                    )
    return found


def summary() -> dict:
    runs = rows()
    arms = {a: grace2.arm([r for r in runs if r["arm"] == a]) for a in ("e6g3", CONTROL)}
    e6 = arms["e6g3"]
    decided = e6["runs"] == len(grace2.SEEDS) * len(grace2.POPULATIONS)
    adopt = (
        decided
        and e6["meets_coverage"] > arms[CONTROL]["meets_coverage"]
        and e6["demo_median_seconds"] is not None
        and e6["demo_median_seconds"] <= 1200
    )
    return {
        "arms": arms,
        "rule_met": adopt if decided else None,
        "runs": runs,
        "fifteen_minutes": fifteen_minutes(),
    }


TIMEOUT15 = ("demo", "e40")  # the Fashion-MNIST teachers, whose fronts the change widened


def fifteen_minutes() -> list[dict]:
    """The 15-minute searches that landed, with the target met or not (``grace2.meets``)."""
    found = []
    for population in TIMEOUT15:
        path = HERE / f"{name(population, 0)}-15m.json"
        if path.exists():
            r = json.loads(path.read_text())
            found.append({"population": population, "meets": grace2.meets(r), **r})
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", action="store_true", help="only write summary.json")
    ap.add_argument("--timeout15", action="store_true", help="the 15-minute check (README.md)")
    args = ap.parse_args()
    if args.timeout15:
        for population in TIMEOUT15:
            run(population, 0, timeout=900.0)
            print(json.dumps(fifteen_minutes(), indent=1))
        return
    if not args.report:
        for population in sorted(grace2.POPULATIONS, key=lambda p: p != "digits"):  # fast first
            for seed in grace2.SEEDS:
                run(population, seed)
    result = summary()
    (HERE / "summary.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
