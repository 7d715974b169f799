"""Final-fidelity runs, as records: a student — searched or hand-designed — retrained from
scratch with export's recipe (train + validation split, the study's batch size and learning
rate, fixed epochs and seed) and measured once on the test split.

They are the evidence behind ``autostudent baselines`` and ``bench students``: nothing is chosen
on them (the students and baselines are fixed by rules before any run), they only measure. Every
run is one record, stored as it lands in the study database (a study user attribute
``final_run:<key>``) and as raw JSON (``<raw_dir>/<key>.json``); a key already stored is never
run again, so an interrupted command continues where it stopped. Records are plain JSON, read
back by ``status``, the dashboard and the model card without torch; ``final_training`` makes
them.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autostudent import provenance

ATTR_PREFIX = "final_run:"
ROLES = ("searched", "baseline")


@dataclass(frozen=True)
class Recipe:
    """Export's recipe: what a run trains on and how (the test split only measures)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    augment: str = "none"

    @property
    def key(self) -> str:
        lr, wd = f"{self.lr:g}", f"{self.weight_decay:g}"
        return f"e{self.epochs}-b{self.batch_size}-lr{lr}-wd{wd}-{self.augment}"


@dataclass(frozen=True)
class KD:
    loss: str
    temperature: float
    alpha: float

    @property
    def label(self) -> str:
        return f"{self.loss}-T{self.temperature:.3g}-a{self.alpha:.3g}"


@dataclass(frozen=True)
class RunPlan:
    """One run to make: which student, with which KD settings (None: plain cross-entropy)."""

    role: str  # "searched" (a trial of the study) or "baseline" (a hand-designed family)
    name: str  # the family, or "trial N"
    spec: dict = field(hash=False, compare=False)
    params: int
    kd: KD | None
    seed: int
    recipe: Recipe
    trial: int | None = None
    target_params: int | None = None  # a baseline's size target

    @property
    def key(self) -> str:
        kd = self.kd.label if self.kd else "nokd"
        name = re.sub(r"[^A-Za-z0-9_.-]+", "", self.name.replace(" ", ""))
        return f"{self.role}-{name}-p{self.params}-{kd}-s{self.seed}-{self.recipe.key}"


def run_record(
    plan: RunPlan,
    done,
    test_accuracy: float,
    *,
    flops: int,
    test_images: int,
    train_images: int,
    threads: int | None,
    wall_seconds: float,
    device: str,
) -> dict:
    """The record of ``plan`` trained (``done``: a ``retrain.Retrained``) on ``device`` and
    measured."""
    return {
        "key": plan.key,
        "role": plan.role,
        "name": plan.name,
        "trial": plan.trial,
        "family": plan.spec.get("family"),
        "target_params": plan.target_params,
        "params": plan.params,
        "flops": flops,
        "kd": asdict(plan.kd) if plan.kd else None,
        "seed": plan.seed,
        "recipe": asdict(plan.recipe),
        "test_accuracy": test_accuracy,
        "test_images": test_images,
        "train_images": train_images,
        "retrain_seconds": done.seconds,
        "retrain_cpu_seconds": done.cpu_seconds,
        "threads": threads,
        "device": device,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_seconds": wall_seconds,
        "code": provenance.code(),
        "machine": provenance.machine(),
        "spec": plan.spec,
    }


def stored(study) -> dict[str, dict]:
    """Every final-fidelity run recorded in the study, by key."""
    return {
        k[len(ATTR_PREFIX) :]: v
        for k, v in study.user_attrs.items()
        if k.startswith(ATTR_PREFIX) and isinstance(v, dict)
    }


def record(study, run: dict, raw_dir: Path | None) -> None:
    """Store a run: its raw JSON first (minutes of training survive a database that fails to
    take it; ``recover`` stores it at the next start), then the study attribute."""
    if raw_dir is not None:
        raw_dir.mkdir(parents=True, exist_ok=True)
        tmp = raw_dir / f".{run['key']}.json.partial"
        tmp.write_text(json.dumps(run, indent=1) + "\n")
        tmp.replace(raw_dir / f"{run['key']}.json")
    study.set_user_attr(ATTR_PREFIX + run["key"], run)


def recover(study, plans: Iterable[RunPlan], raw_dir: Path | None) -> int:
    """Store the planned runs whose raw JSON is in ``raw_dir`` but not in the study (a run
    that landed while its database write failed); how many."""
    if raw_dir is None:
        return 0
    done, found = stored(study), 0
    for key in dict.fromkeys(p.key for p in plans):
        path = raw_dir / f"{key}.json"
        if key in done or not path.is_file():
            continue
        try:
            run = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # not a record of ours: the run is made again
        if isinstance(run, dict) and run.get("key") == key and "test_accuracy" in run:
            study.set_user_attr(ATTR_PREFIX + key, run)
            found += 1
    return found


def pending(study, plans: Iterable[RunPlan]) -> list[RunPlan]:
    done = stored(study)
    seen: set[str] = set()
    todo = []
    for plan in plans:
        if plan.key not in done and plan.key not in seen:
            seen.add(plan.key)
            todo.append(plan)
    return todo


def groups(runs: Iterable[dict]) -> list[dict]:
    """Runs of one student, KD setting and recipe over seeds → mean ± sd (accuracy in [0, 1])."""
    by: dict[tuple, list[dict]] = {}
    for run in runs:
        kd = run["kd"]
        key = (
            run["role"],
            run["name"],
            run["params"],
            None if kd is None else tuple(sorted(kd.items())),
            json.dumps(run["recipe"], sort_keys=True),
        )
        by.setdefault(key, []).append(run)
    out = []
    for (role, name, params, _, _), members in by.items():
        accs = [m["test_accuracy"] for m in sorted(members, key=lambda m: m["seed"])]
        first = members[0]
        out.append(
            {
                "role": role,
                "name": name,
                "family": first.get("family"),
                "trial": first.get("trial"),
                "params": params,
                "flops": first.get("flops"),
                "kd": first["kd"] is not None,
                "kd_settings": first["kd"],
                "recipe": first["recipe"],
                "epochs": first["recipe"]["epochs"],
                "seeds": sorted(m["seed"] for m in members),
                "test_accuracies": accs,
                "test_accuracy_mean": statistics.fmean(accs),
                "test_accuracy_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            }
        )
    return sorted(out, key=lambda g: (g["role"], g["params"], g["name"], g["kd"]))
