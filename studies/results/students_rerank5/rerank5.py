"""``--rerank 5`` against ``--rerank 3`` on the nine committed budget searches (README.md here:
design and rule, fixed before any run). Resumable: a finished export is not run again, and
``baselines`` never reruns a stored run.

  R=studies/results/students_rerank5/rerank5.py
  .venv/bin/python $R --run r6s2      # one search (names below, in the README's order)
  .venv/bin/python $R --run all       # every search not done yet, in that order
  .venv/bin/python $R --control       # the committed rerank 3 headlines through this code
  .venv/bin/python $R --summary > studies/results/students_rerank5/summary.json

``--control`` recomputes each search's committed ``--rerank 3`` headline through the margin code
below and checks it against the committed ``summary.json``: the arm is read the way the control was.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent
ROOT = RESULTS.parent.parent
sys.path[:0] = [str(RESULTS / "students_e40"), str(RESULTS / "students_e40_cap40" / "current")]
from exports import over  # noqa: E402  (round 2's: one way to read an export)
from margins import study_name  # noqa: E402  (round 5's: a seed's study, as run_seed.sh names it)

CAP40, CAP10 = RESULTS / "students_e40_cap40", RESULTS / "students_e40_cap10"
ROUND2 = (RESULTS / "students_e40" / "fashion_mnist_e40.db", "fashion-mnist-evidence-e40")
ROUND3 = (CAP40 / "cap40.db", "fashion-mnist-e40-cap40")
ROUND4 = (CAP10 / "cap10.db", "fashion-mnist-e40-cap10")


def _cap40(folder: str, seed: int) -> dict:
    """A 1/40 search of round 5 (``current``) or 6 (``rungauto``); both rounds read round 3's and
    round 2's baselines beside their own."""
    here = CAP40 / folder / f"seed{seed}"
    return {
        "dir": here,
        "db": here / f"seed{seed}.db",
        "study": study_name(CAP40 / folder, seed),
        "cap": 7701,
        "others": {"round3": ROUND3, "round2": ROUND2},
    }


def _round4_seed(seed: int) -> dict:
    here = CAP10 / f"seed{seed}"
    others = {"round4_seed0": ROUND4, "round2": ROUND2}
    study = f"fashion-mnist-e40-cap10-seed{seed}"
    return {
        "dir": here,
        "db": here / f"seed{seed}.db",
        "study": study,
        "cap": 30807,
        "others": others,
    }


# the README's order; each search's baseline sets are the ones its round's rule read
SEARCHES = {
    "r6s2": _cap40("rungauto", 2),
    "r5s1": _cap40("current", 1),
    "r5s0": _cap40("current", 0),
    "r5s2": _cap40("current", 2),
    "r6s0": _cap40("rungauto", 0),
    "r6s1": _cap40("rungauto", 1),
    "r4s1": _round4_seed(1),
    "r4s0": {
        "dir": CAP10,
        "db": CAP10 / "cap10.db",
        "study": ROUND4[1],
        "cap": 30807,
        "others": {"round2": ROUND2},
    },
    "r4s2": _round4_seed(2),
}


def export_dir(search: dict, k: int) -> Path:
    return search["dir"] / (f"export-{search['cap']}" + ("" if k == 3 else f"-rerank{k}"))


def run(name: str) -> None:
    s, py = SEARCHES[name], sys.executable
    out, storage = export_dir(s, 5), f"sqlite:///{s['db']}"
    common = ["--storage", storage, "--study", s["study"], "--workers", "2", "--threads", "1"]
    if not (out / "metrics.json").exists():
        pick = ["--pick", f"max-accuracy-under:{s['cap']}", "--rerank", "5", "--rerank-seeds", "3"]
        recipe = ["--epochs", "5", "--seeds", "3", "--out", str(out)]
        subprocess.run(
            [py, "-m", "autostudent", "export", *common, *pick, *recipe], check=True, cwd=ROOT
        )
    params = json.loads((out / "metrics.json").read_text())["params"]
    with open(out.with_name(out.name + "-baselines.json"), "w") as f:
        sizes = ["--sizes", str(params), "--no-students", "--seeds", "3", "--epochs", "5"]
        raw = ["--raw", str(s["dir"] / "runs"), "--json"]
        subprocess.run(
            [py, "-m", "autostudent", "baselines", *common, *sizes, *raw],
            check=True,
            cwd=ROOT,
            stdout=f,
        )


def margin(search: dict, k: int) -> dict | None:
    """The round's rule: the export's test mean minus the best hand-designed student of at most
    its params over each baseline set it read; the headline is the lowest."""
    path = export_dir(search, k) / "metrics.json"
    if not path.exists():
        return None
    metrics = json.loads(path.read_text())
    sets = {"this_study": (search["db"], search["study"]), **search["others"]}
    margins = {key: over(db, name, metrics) for key, (db, name) in sets.items()}
    values = [m["margin_pt"] for m in margins.values() if m["margin_pt"] is not None]
    return {
        **_rerank(metrics),
        "test_mean": metrics["test_accuracy_mean"],
        "test_sd": metrics["test_accuracy_sd"],
        "headline_margin_pt": min(values, default=None),
        "margins": margins,
        "met": min(values, default=-1.0) >= 0.5,
    }


def control() -> None:
    for name, s in SEARCHES.items():
        committed = json.loads((s["dir"] / "summary.json").read_text())["headline_margin_pt"]
        here = margin(s, 3)["headline_margin_pt"]
        assert abs(here - committed) < 1e-9, (name, here, committed)
        print(f"{name}: rerank 3 headline {here:+.2f} pt, as committed")


def committed(search: dict) -> dict:
    """The control: the search's committed ``--rerank 3`` headline (README: fixed before this)."""
    headline = json.loads((search["dir"] / "summary.json").read_text())["headline_margin_pt"]
    metrics = json.loads((export_dir(search, 3) / "metrics.json").read_text())
    return {**_rerank(metrics), "headline_margin_pt": headline, "met": headline >= 0.5}


def _rerank(metrics: dict) -> dict:
    """Reported beside (README): the chosen trial, its rank among the candidates by the proxy,
    and the re-rank's retrain time (core-seconds, summed over candidates and seeds)."""
    candidates = [c["trial"] for c in metrics["rerank"]["candidates"]]
    return {
        "trial": metrics["trial"],
        "params": metrics["params"],
        "candidates": candidates,
        "proxy_rank": candidates.index(metrics["trial"]) + 1,
        "rerank_seconds": sum(c["retrain_seconds"] for c in metrics["rerank"]["candidates"]),
    }


def summary() -> dict:
    rows = {
        name: {"rerank3": committed(s), "rerank5": margin(s, 5)} for name, s in SEARCHES.items()
    }
    done = all(r["rerank5"] is not None for r in rows.values())

    def met(prefix: tuple[str, ...], k: str) -> int:
        return sum(bool(r[k] and r[k]["met"]) for n, r in rows.items() if n.startswith(prefix))

    counts = {
        k: {"1/40": met(("r5", "r6"), k), "1/10": met(("r4",), k)} for k in ("rerank3", "rerank5")
    }
    adopt = counts["rerank5"]["1/40"] > counts["rerank3"]["1/40"] and (
        counts["rerank5"]["1/10"] >= counts["rerank3"]["1/10"]
    )
    return {"searches": rows, "met": counts, "complete": done, "recommend_rerank5": done and adopt}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", help="a search's name (r6s2, ...) or all")
    parser.add_argument("--control", action="store_true")
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args()
    if args.run:
        for name in SEARCHES if args.run == "all" else [args.run]:
            run(name)
    if args.control:
        control()
    if args.summary:
        print(json.dumps(summary(), indent=2, default=str))
