"""Export's retrains, in this process or on a pool of processes (``export --workers N``).

An export with ``--rerank K --seeds S`` retrains K × S candidates, then S students with KD and S
without: 15 retrains for K = S = 3, each minutes to hours on a CPU. They are independent, so
``--workers N`` runs N at a time in spawned processes, each on ``--threads`` torch threads
(default 1: one worker per core, as the search runs its trials). The results do not depend on
``N``: a retrain is fixed by its seed, and a worker returns the trained weights, which this
process loads into the same architecture.

The teacher's outputs are computed here, once, before any worker starts; the workers load them
from the teacher-output cache (``teacher_outputs``), as the search's Ray workers do.

With a ``store`` directory (export's ``.<out>.retrains`` beside ``--out``), every finished
retrain is saved there as it lands — its weights and timings, keyed by everything that fixes it
(architecture, split, KD settings, seed, recipe, data, teacher) — and a later run of the same
export loads it instead of training it again: an export killed after hours resumes where it
stopped. A retrain still running keeps its last finished epoch there too (``<key>.epoch.pt``),
so a killed export of hundreds of epochs loses at most one epoch of each retrain it was running.
Files are read with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from autostudent import killpoints
from autostudent.checkpoint import read_checkpoint
from autostudent.config import StudyConfig
from autostudent.datasets import Data
from autostudent.device import torch_threads
from autostudent.driver import Prepared, prepare
from autostudent.processes import die_with_parent
from autostudent.progress import duration
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


RECENT_EPOCHS = 10  # a pace is read over a retrain's latest epochs: the machine's load moves it


def _kind(job: Job) -> str:
    """Retrains that run at one pace — with the teacher or not, on which split — as the time-left
    line names them."""
    return ("KD" if job.kd is not None else "no-KD") + ("" if job.full else " rerank")


def time_left(turns: Sequence[tuple[int, float | None]], workers: int) -> float | None:
    """Seconds until the last of ``turns`` finishes — each (epochs to go, seconds an epoch or
    None when unknown), taken in order by ``workers`` at a time, as the pool takes its jobs;
    None when a pace is unknown."""
    if any(pace is None for _, pace in turns):
        return None
    free = [0.0] * max(1, min(workers, len(turns)))
    for epochs, pace in turns:
        first = free.index(min(free))
        free[first] += epochs * pace
    return max(free)


def left_line(turns: Sequence[tuple[int, float | None]], kinds: Sequence[str], workers: int) -> str:
    """What an export says of the retrains it has left — ``turns`` as for ``time_left``, each
    retrain's kind named in ``kinds``: the time up to the first retrain of a kind that has not
    run an epoch (the pool starts them in order), and which ones are not known."""
    known = next((n for n, (_, pace) in enumerate(turns) if pace is None), len(turns))
    if known == 0:
        return f"{len(turns)} retrain(s) to finish: not known until each kind has run an epoch"

    def count(names: Sequence[str]) -> str:
        return " and ".join(f"{names.count(n)} {n}" for n in dict.fromkeys(names))

    at_once = max(1, min(workers, known))
    seconds = duration(time_left(turns[:known], at_once))
    if known == len(turns):
        return (
            f"{len(turns)} retrain(s) to finish: ~{seconds} more at the latest epochs' pace, "
            f"{at_once} at a time"
        )
    return (
        f"{len(turns)} retrain(s) to finish: ~{seconds} more for the {count(kinds[:known])} at "
        f"the latest epochs' pace; the {count(kinds[known:])}: not known until one has run an "
        "epoch"
    )


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

    def key(self, job: Job) -> str:
        """Everything that fixes a retrain's result, hashed: its file name in a store."""
        b = self.budget
        what = {
            "spec": job.spec,
            "data": self.data[job.full].identity,
            "teacher": self.p.teacher.identity,  # the file's SHA-256 for the default input
            "kd": None if job.kd is None else asdict(job.kd),
            "seed": job.seed,
            "recipe": [b.epochs, b.batch_size, b.lr, b.weight_decay, self.augment, self.views],
            "view_features": job.view_features,
            "device": self.p.config.resources.device,
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]

    def retrain(
        self, job: Job, *, plain_progress: bool = False, checkpoint: Path | None = None
    ) -> Retrained:
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
            checkpoint=checkpoint,
        )


@dataclass(frozen=True)
class _Setup:
    config_json: str
    epochs: int
    augment: str
    views: int
    threads: int


_SPLITS: dict[_Setup, Splits] = {}


def _in_worker(setup: _Setup, job: Job, checkpoint: Path | None) -> dict:
    """A pool worker's retrain; the weights go back as a CPU state dict."""
    from autostudent.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(setup.threads)
    if setup not in _SPLITS:
        p = prepare(StudyConfig.model_validate_json(setup.config_json))
        _SPLITS[setup] = Splits(p, epochs=setup.epochs, augment=setup.augment, views=setup.views)
    # several workers share the terminal: one line per epoch, not a live bar each
    return _as_record(_SPLITS[setup].retrain(job, plain_progress=True, checkpoint=checkpoint))


def _as_record(done: Retrained) -> dict:
    return {
        "state": {k: v.detach().cpu() for k, v in done.model.state_dict().items()},
        "seconds": done.seconds,
        "epoch_seconds": list(done.epoch_seconds),
        "cpu_seconds": done.cpu_seconds,
    }


class Retrainer:
    """Runs an export's retrains: here (``workers`` 1, on this process's torch threads) or
    ``workers`` at a time on a pool, each worker on ``threads`` torch threads (default 1);
    with a ``store``, each saved as it lands and loaded instead of rerun (module docstring)."""

    def __init__(
        self,
        splits: Splits,
        *,
        workers: int = 1,
        threads: int | None = None,
        store: Path | None = None,
    ) -> None:
        self.splits = splits
        self.workers = workers
        self.threads = threads
        self.store = store
        self.resumed = 0  # retrains loaded from the store, not run
        self.ran = 0

    def run(self, jobs: Sequence[Job]) -> list[Retrained]:
        """The jobs' trained students, in the jobs' order."""
        keys = [self.splits.key(job) for job in jobs]
        records: dict[int, dict] = {}
        for i, key in enumerate(keys):
            found = self._load(key)
            if found is not None:
                records[i] = found
        self.resumed += len(records)
        todo = [i for i in range(len(jobs)) if i not in records]
        self._say_resumed(len(jobs), len(records), [keys[i] for i in todo])
        if records or any(self._progress(keys[i])[0] for i in todo):
            self._say_left(jobs, keys, todo, records)
        for full, features in dict.fromkeys((jobs[i].full, jobs[i].view_features) for i in todo):
            self.splits.outputs(full, features)  # computed and cached before any worker reads
        if self.workers <= 1 or len(todo) <= 1:
            # the last retrain of a pool export (one left after a resume) runs here, on the
            # threads a worker would have had: the same numbers, and what metrics.json says
            with torch_threads((self.threads or 1) if self.workers > 1 else None):
                for i in todo:
                    done = self.splits.retrain(jobs[i], checkpoint=self._checkpoint(keys[i]))
                    records[i] = self._save(keys[i], _as_record(done))
                    self._say_done(jobs[i], records[i], len(records), len(jobs))
                    self._say_left(jobs, keys, todo, records)
        else:
            self._pool(jobs, keys, todo, records)
        self.ran += len(todo)
        return [self._model(jobs[i], records[i]) for i in range(len(jobs))]

    def _say_resumed(self, total: int, loaded: int, todo_keys: list[str]) -> None:
        """One line when a store holds work of these jobs: what is loaded, what goes on."""
        if self.store is None:
            return
        going_on = sum(1 for key in todo_keys if self._checkpoint(key).is_file())
        if loaded or going_on:
            print(f"resuming from {self.store}: {loaded} of {total} retrains finished earlier "
                  f"(loaded, not rerun), {going_on} go on from their last epoch, "
                  f"{len(todo_keys) - going_on} to start", file=sys.stderr)  # fmt: skip

    @staticmethod
    def _say_done(job: Job, record: dict, count: int, total: int) -> None:
        """One line as a retrain lands: several run side by side for hours, and their epoch
        lines say how far each one is, not the whole export."""
        print(f"{job.label}: finished in {duration(record['seconds'])} ({count} of {total} "
              "retrains done)", file=sys.stderr)  # fmt: skip

    def _say_left(self, jobs, keys, todo: list[int], records: dict[int, dict]) -> None:
        """One line on how long the retrains not finished yet take, at the pace of the latest
        epochs of their kind: an export of hundreds of epochs runs its retrains in turns, and
        each one's epoch lines tell only its own time left."""
        left = [i for i in todo if i not in records]
        if not left:
            return
        progress = {i: self._progress(keys[i]) for i in left}
        pace: dict[str, float] = {}  # a kind's running retrains' latest epochs, else finished
        for seconds_of in (
            {i: progress[i][1] for i in left},
            {i: r["epoch_seconds"] for i, r in records.items()},
        ):
            latest: dict[str, list[float]] = {}
            for i, seconds in seconds_of.items():
                latest.setdefault(_kind(jobs[i]), []).extend(seconds[-RECENT_EPOCHS:])
            for kind, seconds in latest.items():
                if seconds and kind not in pace:
                    pace[kind] = sum(seconds) / len(seconds)
        epochs = self.splits.budget.epochs
        turns = [(epochs - progress[i][0], pace.get(_kind(jobs[i]))) for i in left]
        print(left_line(turns, [_kind(jobs[i]) for i in left], self.workers), file=sys.stderr)

    def _progress(self, key: str) -> tuple[int, list[float]]:
        """A running retrain's epochs done and their seconds, from its last epoch's checkpoint
        (none yet, or unreadable: 0)."""
        path = self._checkpoint(key)
        if path is None or not path.is_file():
            return 0, []
        try:
            stored = read_checkpoint(path)
            return int(stored["epoch"]), list(stored["epoch_seconds"])
        except Exception:  # being replaced, or cut short by a kill
            return 0, []

    def _pool(self, jobs, keys, todo, records) -> None:
        s = self.splits
        # one torch thread per worker unless told: N workers of one thread fill N cores
        threads = self.threads or 1
        setup = _Setup(s.p.config.model_dump_json(), s.budget.epochs, s.augment, s.views, threads)
        spawn = multiprocessing.get_context("spawn")  # no forked torch state in the workers
        with ProcessPoolExecutor(
            min(self.workers, len(todo)), mp_context=spawn, initializer=die_with_parent
        ) as pool:
            futures = {
                pool.submit(_in_worker, setup, jobs[i], self._checkpoint(keys[i])): i for i in todo
            }
            try:
                for future in as_completed(futures):  # saved as each lands
                    i = futures[future]
                    records[i] = self._save(keys[i], future.result())
                    self._say_done(jobs[i], records[i], len(records), len(jobs))
                    self._say_left(jobs, keys, todo, records)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    def _model(self, job: Job, record: dict) -> Retrained:
        model = build_student(job.spec)
        model.load_state_dict(record["state"])
        model = model.to(torch.device(self.splits.p.config.resources.device)).eval()
        return Retrained(model, record["seconds"], record["epoch_seconds"], record["cpu_seconds"])

    def _load(self, key: str) -> dict | None:
        path = None if self.store is None else self.store / f"{key}.pt"
        if path is None or not path.is_file():
            return None
        try:
            record = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a file cut short by the kill: trained again
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def _checkpoint(self, key: str) -> Path | None:
        """Where a running retrain keeps its last finished epoch (``retrain(checkpoint=)``)."""
        return None if self.store is None else self.store / f"{key}.epoch.pt"

    def _save(self, key: str, record: dict) -> dict:
        if self.store is not None:
            self.store.mkdir(parents=True, exist_ok=True)
            tmp = self.store / f".{key}.pt.{os.getpid()}"
            torch.save({**record, "key": key}, tmp)
            tmp.replace(self.store / f"{key}.pt")
            self._checkpoint(key).unlink(missing_ok=True)  # the finished record supersedes it
            killpoints.reached("retrain_saved")  # the fault tests kill an export here
        return record
