"""Each arm's test accuracy, paired gain over no KD and share of the no-KD student's gap to the
teacher, from the two exports' metrics.json (README's design): the first export's own KD and
no-KD runs, the second's KD runs paired by seed with the first's no-KD runs. Prints JSON.

  D=studies/results/kd_second_teacher
  .venv/bin/python $D/shares.py > $D/shares.json
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent


def arm(kd: list[float], no_kd: list[float], teacher: float) -> dict:
    gains = [k - n for k, n in zip(kd, no_kd, strict=True)]
    gap = teacher - statistics.mean(no_kd)
    return {
        "kd": {"values": kd, "mean": statistics.mean(kd), "sd": statistics.stdev(kd)},
        "gain": {"values": gains, "mean": statistics.mean(gains), "sd": statistics.stdev(gains)},
        "gap": gap,
        "share": statistics.mean(gains) / gap,
    }


def main() -> dict:
    own = json.loads((HERE / "export" / "metrics.json").read_text())
    hinton = json.loads((HERE / "export-hinton" / "metrics.json").read_text())
    assert own["seeds"]["seeds"] == hinton["seeds"]["seeds"], "the arms must share their seeds"
    teacher = own["teacher"]["test_accuracy"]
    no_kd = own["seeds"]["no_kd"]["values"]
    return {
        "trial": own["trial"],
        "params": own["params"],
        "seeds": own["seeds"]["seeds"],
        "teacher_test_accuracy": teacher,
        "no_kd": {"values": no_kd, "mean": statistics.mean(no_kd), "sd": statistics.stdev(no_kd)},
        "own": {"kd_settings": own["kd"], **arm(own["seeds"]["kd"]["values"], no_kd, teacher)},
        "hinton": {
            "kd_settings": hinton["kd"],
            **arm(hinton["seeds"]["kd"]["values"], no_kd, teacher),
        },
        "export_kd_gap_closed": own["kd_gap_closed"],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
