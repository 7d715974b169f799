"""summary.json of the patient round: per seed the KD student's and the no-KD baseline's test
accuracy (each seed's export, ``seedN/metrics.json``), their means ± sd, the KD gain and the
share of the no-KD student's gap to the teacher that KD closes (issue 16's KD target), beside
the same student's earlier rounds (``../kd_recipe/e40/summary.json``: no augmentation, 5 and 15
epochs)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _stats(values: list[float]) -> dict:
    sd = statistics.stdev(values) if len(values) > 1 else None
    return {"values": values, "mean": statistics.fmean(values), "sd": sd}


def main() -> None:
    runs = [json.loads(p.read_text()) for p in sorted(HERE.glob("seed*/metrics.json"))]
    if not runs:
        raise SystemExit("no seedN/metrics.json yet")
    teacher = runs[0]["teacher"]["test_accuracy"]
    kd = [r["test_accuracy"] for r in runs]
    no_kd = [r["no_kd"]["test_accuracy"] for r in runs]
    gains = [a - b for a, b in zip(kd, no_kd, strict=True)]
    gap = teacher - statistics.fmean(no_kd)
    first = runs[0]
    print(json.dumps({
        "student": {"trial": first["trial"], "params": first["params"]},
        "teacher_test_accuracy": teacher,
        "recipe": {k: first[k] for k in ("epochs", "batch_size", "lr", "augment", "train_images")},
        "kd": first["kd"],
        "seeds": [r["seed"] for r in runs],
        "kd_student": _stats(kd),
        "no_kd": _stats(no_kd),
        "kd_gain_pt": _stats([100 * g for g in gains]),
        "no_kd_gap_pt": 100 * gap,
        "kd_gap_closed": statistics.fmean(gains) / gap,
        "epoch_seconds_kd": [r["epoch_seconds"] for r in runs],
        "earlier": json.loads((HERE.parent / "kd_recipe" / "e40" / "summary.json").read_text()),
        "command": "studies/results/kd_patient/run.sh",
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
