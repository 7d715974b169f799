"""Export's retrains, in this process or on a pool of processes (``export --workers N``).

An export with ``--rerank K --seeds S`` retrains K × S candidates, then S students with KD and S
without: 15 retrains for K = S = 3, each minutes to hours on a CPU. They are independent, so
``--workers N`` runs N at a time in spawned processes, each on ``--threads`` torch threads (on
a CPU, N workers of one thread use N cores better than one process of N threads: the students
are small). The results do not depend on ``N``: a retrain is fixed by its seed, and a worker
returns the trained weights, which this process loads into the same architecture.

The teacher's outputs are computed here, once, before any worker starts; the workers load them
from the teacher-output cache (``teacher_outputs``), as the search's Ray workers do.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import torch

from autostudent.config import StudyConfig
from autostudent.datasets import Data
from autostudent.driver import Prepared, prepare
from autostudent.retrain import Retrained, augment_mode, full_training_split, retrain
from autostudent.student import build_student
from autostudent.teacher_outputs import TeacherOutputs, default_cache_dir, teacher_outputs
from autostudent.trial import Budget, KDSettings


@dataclass(frozen=True)
class Job:
    """One retrain: an architecture, the split it trains on, its KD settings (None: no KD)."""

    spec: dict = field(hash=False, compare=False)
    full: bool  # the full training split (the exported runs) or the search's (--rerank's)
    kd: KDSettings | None
    seed: int
    label: str
    view_features: bool = False  # which teacher outputs to load (with features on the views)


class Splits:
    """The two training splits an export trains on and their teacher outputs: loaded once per
    process, the outputs on first use."""

    def __init__(self, p: Prepared, *, epochs: int, augment: str, views: int) -> None:
        self.p = p
        self.augment = augment
        self.views = views if augment_mode(augment).views else 0
        self.budget = Budget.of(p.config.budget.model_copy(update={"epochs": epochs}))
        self.data: dict[bool, Data] = {False: p.data, True: full_training_split(p.data)}
        self._outputs: dict[tuple[bool, bool], TeacherOutputs] = {}

    def outputs(self, full: bool, view_features: bool = False) -> TeacherOutputs:
        key = (full, view_features)
        if key not in self._outputs:
            c = self.p.config
            self._outputs[key] = teacher_outputs(
                self.p.teacher,
                self.data[full],
                c.cache_dir or default_cache_dir(),
                device=c.resources.device,
                views=self.views,
                view_features=view_features,
            )
        return self._outputs[key]

    def retrain(self, job: Job, *, plain_progress: bool = False) -> Retrained:
        return retrain(
            job.spec,
            self.data[job.full],
            kd=job.kd,
            outputs=self.outputs(job.full, job.view_features),
            teacher=self.p.teacher,
            budget=self.budget,
            seed=job.seed,
            augment_with=self.augment,
            device=self.p.config.resources.device,
            label=job.label,
            plain_progress=plain_progress,
        )


@dataclass(frozen=True)
class _Setup:
    config_json: str
    epochs: int
    augment: str
    views: int
    threads: int


_SPLITS: dict[_Setup, Splits] = {}


def _in_worker(setup: _Setup, job: Job) -> tuple[dict, float, list[float], float]:
    """A pool worker's retrain; the weights go back as a CPU state dict."""
    from autostudent.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(setup.threads)
    if setup not in _SPLITS:
        p = prepare(StudyConfig.model_validate_json(setup.config_json))
        _SPLITS[setup] = Splits(p, epochs=setup.epochs, augment=setup.augment, views=setup.views)
    # several workers share the terminal: one line per epoch, not a live bar each
    done = _SPLITS[setup].retrain(job, plain_progress=True)
    state = {k: v.detach().cpu() for k, v in done.model.state_dict().items()}
    return state, done.seconds, done.epoch_seconds, done.cpu_seconds


class Retrainer:
    """Runs an export's retrains: here (``workers`` 1, on this process's torch threads) or
    ``workers`` at a time on a pool, each worker on ``threads`` torch threads (default 1)."""

    def __init__(self, splits: Splits, *, workers: int = 1, threads: int | None = None) -> None:
        self.splits = splits
        self.workers = workers
        self.threads = threads

    def run(self, jobs: Sequence[Job]) -> list[Retrained]:
        """The jobs' trained students, in the jobs' order."""
        for key in dict.fromkeys((j.full, j.view_features) for j in jobs):
            self.splits.outputs(*key)  # computed and cached here, before any worker reads them
        if self.workers <= 1 or len(jobs) <= 1:
            return [self.splits.retrain(job) for job in jobs]
        s = self.splits
        # one torch thread per worker unless told: N workers of one thread fill N cores
        threads = self.threads or 1
        setup = _Setup(s.p.config.model_dump_json(), s.budget.epochs, s.augment, s.views, threads)
        spawn = multiprocessing.get_context("spawn")  # no forked torch state in the workers
        with ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=spawn) as pool:
            futures = [pool.submit(_in_worker, setup, job) for job in jobs]
            try:
                results = [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        device = torch.device(s.p.config.resources.device)
        out = []
        for job, (state, seconds, epoch_seconds, cpu_seconds) in zip(jobs, results, strict=True):
            model = build_student(job.spec)
            model.load_state_dict(state)
            out.append(Retrained(model.to(device).eval(), seconds, epoch_seconds, cpu_seconds))
        return out
