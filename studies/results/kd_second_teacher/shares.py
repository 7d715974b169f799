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

from autostudent.export import gap_closed

HERE = Path(__file__).parent


def stats(values: list[float]) -> dict:
    return {"values": values, "mean": statistics.mean(values), "sd": statistics.stdev(values)}


def arm(kd: list[float], no_kd: list[float], teacher: float) -> dict:
    """One KD arm against the no-KD runs of the same seeds; the share is export's own
    ``gap_closed`` of the paired gains."""
    gain = stats([k - n for k, n in zip(kd, no_kd, strict=True)])
    return {"kd": stats(kd), "gain": gain, **gap_closed(gain, stats(no_kd), teacher)}


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
        "no_kd": stats(no_kd),
        "own": {"kd_settings": own["kd"], **arm(own["seeds"]["kd"]["values"], no_kd, teacher)},
        "hinton": {
            "kd_settings": hinton["kd"],
            **arm(hinton["seeds"]["kd"]["values"], no_kd, teacher),
        },
        "export_kd_gap_closed": own["kd_gap_closed"],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
