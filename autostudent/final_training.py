"""Final-fidelity training: runs the plans of ``autostudent baselines`` and ``bench students``.

The study's data, teacher and teacher outputs are loaded once per process; each plan retrains
its student from scratch with export's recipe (``retrain.retrain``, the exported module's test
accuracy as export measures it), and its record is stored in the study as it lands
(``final_runs``). With ``workers`` > 1 the runs go to a pool of spawned processes, each on
``threads`` torch threads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autostudent import study as studydb
from autostudent.baselines import (
    DEFAULT_FAMILIES,
    baseline_kd,
    baseline_plans,
    baseline_rows,
    margins,
    pick_at_fraction,
    run_order,
    searched_plans,
)
from autostudent.errors import UserError
from autostudent.final_runs import Recipe, RunPlan, pending, record, recover, run_record, stored
from autostudent.processes import die_with_parent


@dataclass
class Context:
    """What every run of one study needs, loaded once per process."""

    prepared: Any  # search.Prepared
    data: Any  # the full training split (train + validation)
    outputs: Any  # teacher outputs on it
    test: Any  # datasets.UnitTestSplit


def load_context(config) -> Context:
    from autostudent.datasets import unit_test_split
    from autostudent.driver import prepare
    from autostudent.retrain import full_training_split
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
    return run_record(
        plan,
        done,
        accuracy(module, ctx.test.x, ctx.test.y),
        flops=count_flops(done.model, ctx.data.input_shape),
        test_images=len(ctx.test.y),
        train_images=len(ctx.data.x_train),
        threads=torch.get_num_threads(),
        wall_seconds=time.time() - started,
        device=ctx.prepared.config.resources.device,
    )


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
    storing each record as it lands; returns the new records. A planned run whose raw record
    is in ``raw_dir`` but not in the study is stored from there, not run again."""
    found = recover(study, plans, raw_dir)
    if found:
        log(f"{found} run(s) found in {raw_dir} but not in the study: stored from there")
    todo = pending(study, plans)
    planned = len({p.key for p in plans})  # two sizes may give a family the same member
    log(f"{planned - len(todo)} of {planned} runs already stored; {len(todo)} to run")
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
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=die_with_parent) as pool:
        futures = [pool.submit(_in_worker, config_json, plan, threads) for plan in todo]
        try:
            for future in as_completed(futures):
                land(future.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return new


def run_baselines(
    storage: str,
    study_name: str,
    *,
    families: Sequence[str] = DEFAULT_FAMILIES,
    sizes: Sequence[int] | None = None,
    seeds: int = 3,
    epochs: int = 5,
    augment: str = "none",
    students: bool = True,
    sample: Sequence[int] = (),
    workers: int = 1,
    threads: int = 1,
    raw_dir=None,
    dry_run: bool = False,
    teacher: Path | None = None,
    device: str | None = None,
    log=print,
) -> dict:
    """``autostudent baselines``: plan, run what is not stored yet, and return the comparison.

    The front's students (``students``) are retrained with and without KD, the ``sample``
    trials (``bench students``' dominated ones) with KD only; the students at 1/10 and 1/40 of
    the teacher and their baselines run first over every seed, then the rest seed by seed
    (``baselines.run_order``). ``device``: where the runs train, when not where the search
    trained (``--device``; a study searched on a CPU, its baselines on a GPU). ``augment``:
    export's ``--augment`` (the teacher runs on each augmented batch in ``online`` and
    ``mixup``), but not ``views``: its K is no part of a run's recipe."""
    from autostudent.export import check_retrain_device, study_config
    from autostudent.retrain import augment_mode

    if seeds < 1 or epochs < 1 or workers < 1 or threads < 1:
        raise UserError("--seeds/--epochs/--workers/--threads: must be ≥ 1")
    if augment_mode(augment).views:
        raise UserError(
            "--augment: views is export's alone (its K views are no part of a stored run's "
            "recipe); use none, cached, online or mixup"
        )
    study = studydb.load(storage, study_name)
    if device is not None or not dry_run:  # a plan trains nothing: it runs anywhere
        check_retrain_device(study, device)
    config = study_config(study, storage, teacher, needs_teacher=not dry_run, device=device)
    front = [r["trial"] for r in studydb.pareto_rows(study)]
    if not front:
        raise UserError(f"--study: {study_name!r} has no complete trial on its front yet")
    rows = {r["trial"]: r for r in studydb.pareto_rows(study)}
    targets = list(sizes) if sizes is not None else sorted({int(rows[t]["params"]) for t in front})
    b = config.budget
    recipe = Recipe(epochs, b.batch_size, b.lr, b.weight_decay, augment)
    kd, kd_trial = baseline_kd(study)
    shape = _input_shape(study, config)
    seed_list = list(range(seeds))
    plans = []
    if students:
        plans += searched_plans(study, front, seed_list, recipe, no_kd=True)
    plans += searched_plans(study, list(sample), seed_list, recipe, no_kd=False)
    plans += baseline_plans(
        families,
        targets,
        seed_list,
        recipe,
        kd,
        in_channels=shape[0],
        num_classes=shape[3],
        input_size=shape[1],
    )
    teacher_params = study.user_attrs.get("teacher", {}).get("params")
    firsts = [pick_at_fraction(list(rows.values()), teacher_params, f) for f in (10, 40)]
    plans = run_order(plans, [r["trial"] for r in firsts if r is not None])
    log(
        f"baselines of {study_name!r}: families {', '.join(families)} at "
        f"{', '.join(f'{s:,}' for s in targets)} params; KD settings of trial {kd_trial} "
        f"({kd.loss}, T {kd.temperature:.3g}, α {kd.alpha:.3g}) and without KD; "
        f"{seeds} seed(s), {epochs} epoch(s), batch {b.batch_size}, lr {b.lr:g}, "
        f"augment {augment}, on {config.resources.device}"
    )
    if not dry_run:
        run_all(study, config, plans, workers=workers, threads=threads, raw_dir=raw_dir, log=log)
    runs = list(stored(study).values())
    keys = {p.key for p in plans}
    return {
        "study": study_name,
        "families": list(families),
        "sizes": targets,
        "kd": {
            "trial": kd_trial,
            "loss": kd.loss,
            "temperature": kd.temperature,
            "alpha": kd.alpha,
        },
        "recipe": {
            "epochs": epochs,
            "batch_size": b.batch_size,
            "lr": b.lr,
            "weight_decay": b.weight_decay,
            "augment": recipe.augment,
        },
        "device": config.resources.device,
        "planned": len({p.key for p in plans}),
        "to_run": len(pending(study, plans)),
        "baselines": baseline_rows(r for r in runs if r["key"] in keys),
        "margins": margins(r for r in runs if r["key"] in keys),
    }


def _input_shape(study, config) -> tuple[int, int, int, int]:
    """(channels, height, width, classes) of the study's data, from a trial spec when there is
    one (no data loading), else from the data."""
    for t in study.get_trials(deepcopy=False):
        spec = t.user_attrs.get("spec")
        if spec:
            return (
                spec["in_channels"],
                spec["input_size"],
                spec["input_size"],
                spec["num_classes"],
            )
    from autostudent.datasets import load_data

    d = config.data
    data = load_data(d.name, d.root, val_fraction=d.val_fraction, seed=d.split_seed)
    c, h, w = data.input_shape
    return (c, h, w, data.num_classes)
