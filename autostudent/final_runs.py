"""Final-fidelity runs: a student — searched or hand-designed — retrained from scratch with
export's recipe (train + validation split, the study's batch size and learning rate, fixed
epochs and seed) and measured once on the test split.

They are the evidence behind ``autostudent baselines`` and ``bench students``: nothing is chosen
on them (the students and baselines are fixed by rules before any run), they only measure. Every
run is one record, stored as it lands in the study database (a study user attribute
``final_run:<key>``) and as raw JSON (``<raw_dir>/<key>.json``); a key already stored is never
run again, so an interrupted command continues where it stopped. Records are plain JSON, read
back by ``status``, the dashboard and the model card without torch.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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


def stored(study) -> dict[str, dict]:
    """Every final-fidelity run recorded in the study, by key."""
    return {
        k[len(ATTR_PREFIX) :]: v
        for k, v in study.user_attrs.items()
        if k.startswith(ATTR_PREFIX) and isinstance(v, dict)
    }


def record(study, run: dict, raw_dir: Path | None) -> None:
    study.set_user_attr(ATTR_PREFIX + run["key"], run)
    if raw_dir is not None:
        raw_dir.mkdir(parents=True, exist_ok=True)
        tmp = raw_dir / f".{run['key']}.json.partial"
        tmp.write_text(json.dumps(run, indent=1) + "\n")
        tmp.replace(raw_dir / f"{run['key']}.json")


def pending(study, plans: Iterable[RunPlan]) -> list[RunPlan]:
    done = stored(study)
    seen: set[str] = set()
    todo = []
    for plan in plans:
        if plan.key not in done and plan.key not in seen:
            seen.add(plan.key)
            todo.append(plan)
    return todo


# --- running ----------------------------------------------------------------------------------


@dataclass
class Context:
    """What every run of one study needs, loaded once per process."""

    prepared: Any  # search.Prepared
    data: Any  # the full training split (train + validation)
    outputs: Any  # teacher outputs on it
    test: Any  # datasets.UnitTestSplit


def load_context(config) -> Context:
    from autostudent.datasets import unit_test_split
    from autostudent.errors import UserError
    from autostudent.retrain import full_training_split
    from autostudent.search import prepare
    from autostudent.teacher_outputs import default_cache_dir, teacher_outputs

    p = prepare(config)
    test = unit_test_split(p.data.name, p.config.data.root)
    if test is None:
        raise UserError(f"data: {p.data.name} has no test split to measure final runs on")
    data = full_training_split(p.data)
    c = p.config
    outputs = teacher_outputs(
        p.teacher, data, c.cache_dir or default_cache_dir(), device=c.resources.device
    )
    return Context(p, data, outputs, test)


def execute(plan: RunPlan, ctx: Context) -> dict:
    """Train ``plan`` from scratch and measure it: the run's record."""
    import torch

    from autostudent.export import deployable
    from autostudent.measure import count_flops
    from autostudent.retrain import retrain
    from autostudent.training import accuracy
    from autostudent.trial import Budget, KDSettings

    r = plan.recipe
    budget = Budget(r.epochs, r.batch_size, r.lr, r.weight_decay)
    kd = KDSettings(plan.kd.loss, plan.kd.temperature, plan.kd.alpha) if plan.kd else None
    started = time.time()
    done = retrain(
        plan.spec,
        ctx.data,
        kd=kd,
        outputs=ctx.outputs,
        teacher=ctx.prepared.teacher,
        budget=budget,
        seed=plan.seed,
        augment_with=r.augment,
        device=ctx.prepared.config.resources.device,
        label=f"{plan.name} {'KD' if kd else 'no KD'} seed {plan.seed}",
    )
    module = deployable(done.model, ctx.data.mean, ctx.data.std, ctx.data.input_shape)
    return {
        "key": plan.key,
        "role": plan.role,
        "name": plan.name,
        "trial": plan.trial,
        "family": plan.spec.get("family"),
        "target_params": plan.target_params,
        "params": plan.params,
        "flops": count_flops(done.model, ctx.data.input_shape),
        "kd": asdict(plan.kd) if plan.kd else None,
        "seed": plan.seed,
        "recipe": asdict(r),
        "test_accuracy": accuracy(module, ctx.test.x, ctx.test.y),
        "test_images": len(ctx.test.y),
        "train_images": len(ctx.data.x_train),
        "retrain_seconds": done.seconds,
        "threads": torch.get_num_threads(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_seconds": time.time() - started,
        "spec": plan.spec,
    }


_CONTEXT: dict[str, Context] = {}


def _in_worker(config_json: str, plan: RunPlan, threads: int) -> dict:
    """A pool worker's run: the context is loaded once per worker process and study."""
    import torch

    from autostudent.allocator import keep_freed_memory
    from autostudent.config import StudyConfig

    keep_freed_memory()
    torch.set_num_threads(threads)
    if config_json not in _CONTEXT:
        _CONTEXT[config_json] = load_context(StudyConfig.model_validate_json(config_json))
    return execute(plan, _CONTEXT[config_json])


def run_all(
    study,
    config,
    plans: Sequence[RunPlan],
    *,
    workers: int = 1,
    threads: int = 1,
    raw_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Run the plans not yet stored, ``workers`` at a time (each on ``threads`` torch threads),
    storing each record as it lands; returns the new records."""
    todo = pending(study, plans)
    log(f"{len(plans) - len(todo)} of {len(plans)} runs already stored; {len(todo)} to run")
    new: list[dict] = []

    def land(run: dict) -> None:
        record(study, run, raw_dir)
        new.append(run)
        kd = "KD" if run["kd"] else "no KD"
        log(
            f"[{len(new)}/{len(todo)}] {run['name']} ({run['params']:,} params) {kd} "
            f"seed {run['seed']}: test {100 * run['test_accuracy']:.2f} % "
            f"({run['retrain_seconds']:.0f} s)"
        )

    if not todo:
        return new
    if workers <= 1:
        import torch

        torch.set_num_threads(threads)
        ctx = load_context(config)
        for plan in todo:
            land(execute(plan, ctx))
        return new
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    config_json = config.model_dump_json()
    spawn = multiprocessing.get_context("spawn")  # no forked torch/Ray state in the workers
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        futures = [pool.submit(_in_worker, config_json, plan, threads) for plan in todo]
        try:
            for future in as_completed(futures):
                land(future.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return new


# --- reading ------------------------------------------------------------------------------------


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
