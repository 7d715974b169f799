"""The search driver (``autostudent search``, ``autostudent.search``): config → data + teacher →
teacher-output cache → study → Ray Tune.

Everything that can be wrong with the input is checked before the study database is touched;
the database is written only by this driver process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from torch import nn

from autostudent import executor, storage, worker_log
from autostudent import objectives as objs
from autostudent import study as studydb
from autostudent.candidate import CandidateFactory
from autostudent.config import StudyConfig, TeacherConfig
from autostudent.datasets import Data, load_data
from autostudent.device import resolve
from autostudent.errors import Interrupted, SearchStopped, UserError
from autostudent.inmemory import store_teacher
from autostudent.lease import Lease, LeaseLost
from autostudent.losses import kd_loss
from autostudent.measure import count_flops, measure_latency
from autostudent.progress import SearchProgress
from autostudent.sampler import CAP_AWARE, make_sampler
from autostudent.storage import StorageLost, public_url
from autostudent.teacher import Teacher, TeacherSource, check_teacher, load_teacher
from autostudent.teacher_outputs import TeacherOutputs, default_cache_dir, teacher_outputs
from autostudent.trial import Budget, Caps


@dataclass
class Prepared:
    """A validated study, ready to run: nothing written to the database yet."""

    config: StudyConfig
    data: Data
    teacher: Teacher
    factory: CandidateFactory
    storage_url: str
    store: optuna.storages.RDBStorage | None = None


def prepare(config: StudyConfig, teacher_module: nn.Module | None = None) -> Prepared:
    """Load and check the data and the teacher. A ``teacher_module`` (the Python API's
    in-memory teacher) is stored as a teacher file first (``inmemory.py``): the returned
    config's ``teacher.path`` names that file."""
    c = config
    data = load_data(
        c.data.name,
        c.data.root,
        val_fraction=c.data.val_fraction,
        seed=c.data.split_seed,
        train_subset=c.budget.train_subset,
        options=c.data.options(),
        cache_dir=c.cache_dir,
    )
    if teacher_module is not None:
        stored = store_teacher(teacher_module, data.input_shape, c.cache_dir or default_cache_dir())
        stored_teacher = TeacherConfig(path=stored, format="export", input=c.teacher.input)
        c = c.model_copy(update={"teacher": stored_teacher})
    device = c.resources.device
    resolve(device)  # cuda asked for and absent: one line, before the teacher loads
    teacher = load_teacher(
        TeacherSource.of(c.teacher),
        device,
        data.input_shape,
        data.num_classes,
        (data.mean, data.std),
    )
    check_teacher(teacher, data.input_shape, data.num_classes)
    needs = [name for name in c.kd.losses if kd_loss(name).needs_features]
    if needs and not teacher.has_features:
        raise UserError(
            f"kd.losses: {needs[0]!r} needs the teacher's penultimate features, which "
            f"{teacher.path.name} ({teacher.format}) does not expose; "
            "drop it or use a torch.export teacher"
        )
    factory = CandidateFactory(c, data.input_shape, data.num_classes)
    url = c.storage_url()
    store = studydb.storage(url)  # a bad URL or unreachable server fails here, before any work
    return Prepared(c, data, teacher, factory, url, store)


def teacher_identity(p: Prepared, outputs: TeacherOutputs) -> dict:
    shape = p.data.input_shape
    return {
        # as the study file names it, not this machine's absolute path: results travel
        "path": p.config.teacher.given_path,
        "sha256": p.teacher.sha256,
        "format": p.teacher.format,
        "input": p.teacher.input,  # the images it is fed (teacher.input)
        "params": outputs.params,
        "flops": count_flops(p.teacher.module, shape),
        # the same runtime as the students': the latency objective's reference is the teacher's
        "latency_ms": measure_latency(p.config.resources.latency_runtime, p.teacher.module, shape),
        "latency_runtime": p.config.resources.latency_runtime,
        "val_accuracy": outputs.val_accuracy,
        "test_accuracy": outputs.test_accuracy,
    }


def run_search(
    config: StudyConfig,
    *,
    teacher_module: nn.Module | None = None,
    ray_address: str | None = None,
    show_progress: bool = True,
) -> optuna.Study:
    """Create or continue the study until ``search.n_trials`` trials are finished.

    One driver per study: this one holds the study's lease (``lease.py``) while it runs; a
    second driver on a live study stops with a one-line ``UserError`` naming the live one.
    ``teacher_module``: an in-memory teacher, in place of the config's teacher file.
    """
    executor.check_ray_address(ray_address)
    p = prepare(config, teacher_module)
    c = p.config
    # A study of that name with other objectives, another teacher or other data fails here,
    # before the teacher runs and before anything is written.
    studydb.check_resumable(
        p.storage_url,
        c.study,
        c.search.objectives,
        {
            "teacher": ("teacher.path", {"sha256": p.teacher.sha256, "input": p.teacher.input}),
            "data": ("data", {"identity": p.data.identity}),
        },
    )
    _check_latency_runtime(p, c.resources.latency_runtime)
    with Lease.acquire(p.store, c.study) as lease:
        return _run(p, lease, ray_address=ray_address, show_progress=show_progress)


def _run(p: Prepared, lease: Lease, *, ray_address: str | None, show_progress: bool):
    started = time.monotonic()  # search.timeout counts from here: the run's own wall clock
    c = p.config
    cache_dir = c.cache_dir or default_cache_dir()
    outputs = teacher_outputs(
        p.teacher,
        p.data,
        cache_dir,
        device=c.resources.device,
        views=c.budget.teacher_views,
        view_features=any(kd_loss(name).needs_features for name in c.kd.losses),
    )
    objectives = list(c.search.objectives)
    study = studydb.create_or_load(
        p.storage_url, c.study, objectives, optuna.samplers.RandomSampler()
    )
    # A seeded sampler replays its random stream from the start: a resumed run seeded as the
    # first one would propose the first run's points again. Derive the run's seed from the
    # study seed and the trials already there: reproducible, and new proposals every run.
    run_seed = (
        c.seed
        if not study.trials
        else int(np.random.SeedSequence([c.seed, len(study.trials)]).generate_state(1)[0])
    )
    teacher = teacher_identity(p, outputs)
    studydb.check_identity(study, "teacher", teacher, "teacher.path")
    studydb.check_identity(
        study,
        "data",
        {
            "name": p.data.name,
            "identity": p.data.identity,
            "input_shape": list(p.data.input_shape),
            "num_classes": p.data.num_classes,
            "mean": list(p.data.mean),
            "std": list(p.data.std),
            "skipped_files": list(p.data.skipped),  # data.skip_bad_files: status counts them
            "val_images": len(p.data.y_val),  # what the front's accuracies were read on
        },
        "data",
    )
    # teacher/N: kept as the user gave it, the study stores the numbers; a later run with plain
    # numbers clears it, so it never describes caps that no longer hold
    if c.caps.relative or "caps_given" in study.user_attrs:
        given = c.caps.model_dump(mode="json") if c.caps.relative else None
        study.set_user_attr("caps_given", given)
    c = c.model_copy(update={"caps": c.caps.resolved(teacher)})  # plain numbers stay as they are
    caps = Caps.of(c.caps)
    refs = objs.hv_references(c.caps.model_dump(), teacher)
    # Anyone who opens the study reads its config: the storage URL is kept without its password.
    stored = c.model_dump(mode="json")
    stored["storage"] = public_url(p.storage_url)
    study.set_user_attr("config", stored)
    study.set_user_attr("objectives", objectives)
    study.set_user_attr("hv_reference", {o: refs[o] for o in objectives if o in refs})
    study.sampler = make_sampler(
        c.search.sampler,
        seed=run_seed,
        n_startup_trials=c.search.n_startup_trials,
        objectives=objectives,
        search_space=p.factory.distributions(),
        known_constraints=executor.size_constraints(p.factory, caps),
        hv_reference=study.user_attrs["hv_reference"],  # what status scores: one reference
        measure=p.factory.sizes,  # the repeat and gap rules (sampler._coverage)
        coverage=c.search.coverage.model_dump(),
    )
    if outputs.rebuilt:  # a damaged teacher-output file was rebuilt: counted where users look
        study.set_user_attr("cache_rebuilds", study.user_attrs.get("cache_rebuilds", 0) + 1)
    studydb.recover_interrupted(study, lease.previous)
    study.set_user_attr(studydb.STOPPED_ATTR, None)  # this run's own stop, if any, is stored below
    if studydb.finished(study) >= c.search.n_trials:
        return study

    resources = executor.Resources(
        c.search.workers, c.resources.cpus_per_trial, c.resources.gpus_per_trial, c.resources.device
    )
    budget = Budget.of(c.budget)
    progress = SearchProgress(study, c.search.n_trials) if show_progress else None
    searcher = executor.StudySearcher(
        study,
        p.factory,
        n_trials=c.search.n_trials,
        max_epochs=budget.epochs,
        caps=caps,
        objectives=objectives,
        on_change=progress.update if progress else (lambda: None),
        halt=lambda: storage.lost() or lease.lost_error(),
        deadline=None if c.search.timeout is None else started + c.search.timeout,
        full_budget=frozenset() if c.search.prune_gap_proposals else frozenset({"gap"}),
    )
    payload = {
        "data": p.data,
        "outputs": outputs,
        "budget": budget,
        "caps": caps,
        "device": c.resources.device,
        "threads": c.resources.cpus_per_trial,
        "latency_runtime": c.resources.latency_runtime,
    }
    log = worker_log.record(study, p.storage_url, cache_dir)  # `status` shows where it is
    executor.init_ray(ray_address, resources)
    try:
        if progress:
            progress.__enter__()
        executor.run(
            searcher,
            payload,
            resources,
            max_epochs=budget.epochs,
            early_stopping=c.search.early_stopping,
            grace_period=c.search.grace_period,
            reduction_factor=c.search.reduction_factor,
            storage_path=str(Path(cache_dir) / "ray_results"),
            name=c.study,
            worker_log=log,
        )
    except Exception as exc:
        # Tune wraps what the searcher raised: a lost database or lease is one clear line.
        cause = _cause(exc, (StorageLost, LeaseLost))
        if cause is None:
            raise
        raise cause from None
    finally:
        if searcher.halted is None and not lease.lost and not storage.gave_up():
            studydb.recover_interrupted(study)  # Ctrl-C or a crash: nothing stays RUNNING
        if progress:
            if not storage.gave_up():
                progress.update()
            progress.__exit__(None, None, None)
    if searcher.halted is not None:  # the database was lost or another driver took over
        raise searcher.halted
    done = studydb.finished(study)
    if done < c.search.n_trials and searcher.timed_out and not searcher.gave_up:
        # the time budget: an ordinary end, stored where status and the CLI read it
        study.set_user_attr(
            studydb.STOPPED_ATTR,
            {"by": "timeout", "timeout_s": c.search.timeout, "finished": done,
             "n_trials": c.search.n_trials},
        )  # fmt: skip
        return study
    if done < c.search.n_trials and not searcher.gave_up:  # Tune stopped early: Ctrl-C
        raise Interrupted(
            f"interrupted with {done}/{c.search.n_trials} trials finished; the study is "
            "consistent, run the same command again to continue"
        )
    if searcher.gave_up:
        hint = ""
        if searcher.last_failure_over_size_cap and c.search.sampler not in CAP_AWARE:
            hint = (
                f" (sampler {c.search.sampler} proposes without knowing the caps: "
                "sampler botorch counts each student's size before proposing it)"
            )
        raise SearchStopped(
            f"search stopped: {searcher.failures} trials in a row failed, the last with "
            f"{searcher.last_failure!r}; widen caps or narrow the search space{hint}"
        )
    return study


def _check_latency_runtime(p: Prepared, runtime: str) -> None:
    """A study's latencies come from one runtime: resuming it with another would mix them."""
    try:
        study = optuna.load_study(study_name=p.config.study, storage=p.store)
    except KeyError:
        return  # a new study
    teacher = study.user_attrs.get("teacher")
    was = None if teacher is None else teacher.get("latency_runtime", "torch")
    if was is not None and was != runtime:
        raise UserError(
            f"resources.latency_runtime: study {p.config.study!r} measured latency with {was}, "
            f"the config asks for {runtime}; use a new --study name"
        )


def _cause(exc: BaseException, kinds: tuple[type[Exception], ...]) -> Exception | None:
    """The first exception of ``kinds`` in ``exc``'s chain of causes and contexts."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kinds):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
