"""Round 2's headline figures (step 4), by the rules fixed in README.md before any run: each
exported student against the best hand-designed student of at most its size, same teacher and
recipe. ``export`` measured its ``versus_baseline`` against the baselines stored at the time,
which were sized to the front only; step 4b sized both families to each export's own params as
well, so the comparison includes the best hand-designed student of (nearly) its size. Both are
reported; where they differ, the lower is the headline. Prints exports.json; run.sh's last step.

  cd studies/results/students_e40 && ../../../.venv/bin/python exports.py > exports.json
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DB, STUDY = HERE / "fashion_mnist_e40.db", "fashion-mnist-evidence-e40"
TEACHER_PARAMS = 308_074
SIZES = {"1/10": 30807, "1/40": 7701}
# export's recipe as the rules fix it (the study's batch, lr and weight decay; 5 epochs)
RECIPE = {"epochs": 5, "batch_size": 64, "lr": 0.05, "weight_decay": 0.0005, "augment": "none"}


def student(metrics: dict) -> dict:
    """The exported student as summaries name it: mean ± sd over its seeds, KD and its gain."""
    recipe = {k: metrics[k] for k in ("epochs", "batch_size", "lr")}
    assert recipe.items() <= RECIPE.items() and metrics["augment"]["mode"] == "none", recipe
    return {
        "trial": metrics["trial"],
        "params": metrics["params"],
        "mean": metrics["test_accuracy_mean"],
        "sd": metrics["test_accuracy_sd"],
        "seeds": metrics["seeds"]["seeds"],
        "kd": metrics["kd"],
        "kd_gain": metrics["kd_gain"],
        "rerank": metrics.get("rerank"),
    }


def over(db: Path, study_name: str, metrics: dict) -> dict:
    """The export's margin over the best baseline of at most its params stored in ``db``, under
    the rules' recipe."""
    from autostudent import study as studydb
    from autostudent.baselines import baseline_summary, best_baseline
    from autostudent.final_runs import groups, stored

    runs = stored(studydb.load(f"sqlite:///{db}", study_name)).values()
    best = best_baseline(groups(runs), metrics["params"], RECIPE)
    return {
        "baseline": None if best is None else baseline_summary(best),
        "margin_pt": (
            None
            if best is None
            else 100 * (metrics["test_accuracy_mean"] - best["test_accuracy_mean"])
        ),
    }


def main() -> dict:
    out = []
    for fraction, size in SIZES.items():
        metrics = json.loads((HERE / f"export-{size}" / "metrics.json").read_text())
        now = over(DB, STUDY, metrics)
        then = metrics["versus_baseline"]
        margins = [m for m in (now["margin_pt"], then["margin_pt"]) if m is not None]
        out.append(
            {
                "teacher_fraction": fraction,
                "max_params": size,
                "student": student(metrics),
                "recipe": RECIPE,
                "headline_margin_pt": min(margins, default=None),
                "sized_to_student": now,
                "export_versus_baseline": then,
            }
        )
    return {
        "teacher_params": TEACHER_PARAMS,
        "exports": out,
        "commands": [
            "studies/results/students_e40/run.sh",
            *(
                f"autostudent export --storage sqlite:///studies/results/students_e40/"
                f"fashion_mnist_e40.db --study {STUDY} --pick max-accuracy-under:{s} "
                f"--rerank 3 --epochs 5 --seeds 3 --threads 1 --out "
                f"studies/results/students_e40/export-{s}"
                for s in SIZES.values()
            ),
            "autostudent baselines --storage sqlite:///studies/results/students_e40/"
            f"fashion_mnist_e40.db --study {STUDY} --sizes 27410,7138 --no-students "
            "--seeds 3 --epochs 5 --workers 2 --threads 1",
        ],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
