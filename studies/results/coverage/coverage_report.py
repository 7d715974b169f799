"""Coverage of a finished study: front, span, distinct architectures, repeats, proposals."""

import json
import sys
from collections import Counter

import optuna

from autostudent import study as studydb

optuna.logging.set_verbosity(optuna.logging.WARNING)
url, name = sys.argv[1], sys.argv[2]
study = optuna.load_study(study_name=name, storage=url)
s = studydb.summary(study)
teacher = s["teacher"]["params"]
trained = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
arch = Counter((t.user_attrs.get("params"), t.user_attrs.get("flops")) for t in trained)
front = sorted(r["params"] for r in s["pareto"])
out = {
    "study": name,
    "teacher_params": teacher,
    "states": s["states"],
    "front_params": front,
    "front_accuracy": [r["accuracy"] for r in sorted(s["pareto"], key=lambda r: r["params"])],
    "front_size": len(front),
    "span": (front[-1] / front[0]) if front else None,
    "front_in_1/20..1/5": [p for p in front if teacher / 20 <= p <= teacher / 5],
    "distinct_architectures": len(arch),
    "max_repeats": max(arch.values()),
    "most_repeated": [[list(k), v] for k, v in arch.most_common(3)],
    "complete_params": sorted(
        t.user_attrs.get("params") for t in study.trials if t.state.name == "COMPLETE"
    ),
    "proposal": dict(Counter(t.user_attrs.get("proposal") for t in study.trials)),
    "proposal_relaxed": dict(
        Counter(
            t.user_attrs["proposal_relaxed"]
            for t in study.trials
            if "proposal_relaxed" in t.user_attrs
        )
    ),
    "fallbacks": s["fallbacks"],
    "hypervolume": s["hypervolume"],
    "wall_s": (
        max(t.datetime_complete for t in study.trials if t.datetime_complete)
        - min(t.datetime_start for t in study.trials)
    ).total_seconds(),
}
print(json.dumps(out, indent=1))
