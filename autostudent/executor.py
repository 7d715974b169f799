"""Ray Tune runs the trials; the Optuna study stays the single source of truth.

``StudySearcher`` is the glue: Ray Tune's ``Searcher`` seam asks the study for proposals
(``study.ask`` with the study's sampler) and tells it every outcome. Early stopping comes from a
Tune scheduler (early_stopping.py: MO-ASHA, ASHA or none, over epochs); a trial it stops is told
as PRUNED with the fidelity it reached, never as COMPLETE with low-fidelity values (Ray's own
OptunaSearch does the latter). Failures carry their reason into the trial's ``failure`` attribute.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from autostudent import killpoints, worker
from autostudent import objectives as objs
from autostudent.allocator import worker_env
from autostudent.candidate import Candidate, CandidateFactory
from autostudent.early_stopping import FULL_BUDGET
from autostudent.errors import RayFailed, TrialFailed, UserError
from autostudent.lease import LeaseLost
from autostudent.sampler import PROPOSAL_ATTR, KnownConstraints
from autostudent.sizes import count_sizes
from autostudent.storage import StorageLost
from autostudent.study import finished, set_user_attrs
from autostudent.trial import Caps, cap_constraints, check_caps
from autostudent.worker_log import WorkerLog, take_over_ray_printer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resources:
    workers: int = 2
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0
    device: str = "cpu"


def _stops_when_halted(method):
    """A searcher call that does nothing once the driver may no longer write, and that halts
    it when the database is lost or the lease taken over meanwhile (instead of raising into Tune,
    which would log a traceback and retry the trial)."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        stopped = Searcher.FINISHED if method.__name__ == "suggest" else None
        if self._halting():
            return stopped
        try:
            return method(self, *args, **kwargs)
        except (StorageLost, LeaseLost) as exc:
            self.halted = exc
            return stopped

    return call


class Halt(Stopper):
    """Stops every trial of the experiment once the searcher is halted."""

    def __init__(self, searcher: StudySearcher) -> None:
        self.searcher = searcher

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.searcher._halting()


class StudySearcher(Searcher):
    """Ray Tune's ``Searcher`` seam over an Optuna study: ``suggest`` asks the study (its sampler
    proposes), ``on_trial_complete`` tells it. Runs until ``n_trials`` trials are finished, or
    until ``deadline`` (no trial starts after it; the running ones finish)."""

    def __init__(
        self,
        study: optuna.Study,
        factory: CandidateFactory,
        *,
        n_trials: int,
        max_epochs: int,
        caps: Caps,
        objectives: list[str],
        on_change: Callable[[], None] = lambda: None,
        max_failures: int | None = None,
        halt: Callable[[], Exception | None] = lambda: None,
        deadline: float | None = None,
        full_budget: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(metric="val_accuracy", mode="max")
        # the sampler's proposal kinds (its ``proposal`` attribute, e.g. "gap") that early
        # stopping must not stop: their config says ``full_budget`` (search.prune_gap_proposals)
        self.full_budget = full_budget
        # time.monotonic() after which no trial starts (search.timeout); None: no limit
        self.deadline = deadline
        self.study = study
        self.factory = factory
        self.n_trials = n_trials
        self.max_epochs = max_epochs
        self.caps = caps
        self.objectives = objectives
        self.on_change = on_change
        # Why this driver may no longer write (its lease was taken over, its database is gone):
        # the searcher then stops proposing and writing, and ``Halt`` stops Tune's trials.
        self.halt = halt
        self.halted: Exception | None = None
        self.live: dict[str, optuna.trial.Trial] = {}
        # finished trials, counted here once and then on every tell (this driver holds the
        # study's lease: nobody else tells); Tune asks ``suggest`` many times per trial
        self.done = finished(study)
        self.failures = 0  # in a row: one success resets it
        self.failure_limit = max_failures if max_failures is not None else max(20, n_trials)
        self.last_failure = ""
        # the last failure was a student over a size cap, caught from its spec before training:
        # a sampler that knows the caps (sampler.CAP_AWARE) never proposes one
        self.last_failure_over_size_cap = False

    def __getstate__(self) -> dict:
        # Tune pickles its searcher for its own experiment restore, which autostudent does not
        # use (the study database is the truth); the study's engine cannot be pickled.
        return {}

    def save(self, checkpoint_path: str) -> None:
        """Nothing to save: every proposal and result is already in the study database."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to restore: a resumed search reads the study database."""

    def _needed(self) -> int:
        return self.n_trials - self.done

    def _halting(self) -> bool:
        if self.halted is None:
            self.halted = self.halt()
        return self.halted is not None

    @property
    def timed_out(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    @_stops_when_halted
    def suggest(self, trial_id: str) -> dict | str | None:
        if self._needed() <= 0 or self.gave_up or self.timed_out:
            return Searcher.FINISHED if not self.live else None
        if len(self.live) >= self._needed():
            return None  # the trials in flight may suffice; Tune asks again when one ends
        while self.failures < self.failure_limit:
            trial = self.study.ask(self.factory.distributions())
            try:
                candidate = self.factory.make(trial.number, trial.params)
                sizes = prescreen(candidate, self.caps)
            except TrialFailed as exc:  # no architecture at this point, or over a size cap
                over = any(excess > 0 for excess in (exc.constraints or {}).values())
                self._fail(trial, str(exc), exc.constraints, exc.sizes, over_size_cap=over)
                continue
            _constrain(trial, cap_constraints(sizes, self.caps))  # known now, whatever follows
            set_user_attrs(
                trial,
                {
                    "spec": candidate.spec,
                    "arch_seed": candidate.arch_seed,
                    "max_epochs": self.max_epochs,
                },
            )
            self.live[trial_id] = trial
            self.on_change()
            return {
                "number": trial.number,
                "spec": candidate.spec,
                "kd": asdict(candidate.kd),
                "seed": candidate.arch_seed,
                FULL_BUDGET: self._proposal(trial) in self.full_budget,
            }
        return None

    def _proposal(self, trial: optuna.trial.Trial) -> str | None:
        """How the sampler proposed ``trial`` (it stores it while ``ask`` runs, after the
        trial object cached its attributes: read from the storage)."""
        if not self.full_budget:
            return None
        return trial.storage.get_trial_user_attrs(trial._trial_id).get(PROPOSAL_ATTR)

    @property
    def gave_up(self) -> bool:
        return self.failures >= self.failure_limit

    def _fail(
        self,
        trial: optuna.trial.Trial,
        reason: str,
        constraints: Mapping[str, float] | None = None,
        sizes: Mapping[str, float] | None = None,
        traceback: str | None = None,
        over_size_cap: bool = False,
    ) -> None:
        """Tell FAIL with the reason (and the traceback of an unexpected error), and whatever
        is known of its sizes and caps: a failed trial still teaches the sampler's size and
        constraint models."""
        self.failures += 1
        self.last_failure = reason
        self.last_failure_over_size_cap = over_size_cap
        attrs = {"failure": reason, **(sizes or {})}
        if traceback:
            attrs["traceback"] = traceback
        set_user_attrs(trial, attrs)
        _constrain(trial, constraints or {})
        self.study.tell(trial, state=TrialState.FAIL)
        log.info("trial %d failed: %s", trial.number, reason)
        self.on_change()

    @_stops_when_halted
    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """After each epoch: the running trial's curve so far and its worker, so the live
        dashboard shows trials in flight (the final values are told on completion)."""
        trial = self.live.get(trial_id)
        if trial is None or result.get("failure") or "curve" not in result:
            return
        attrs = {"curve": result["curve"], "epochs": result["epochs"]}
        if result.get("worker") and "worker" not in trial.user_attrs:
            attrs["worker"] = result["worker"]
        if result["epochs"] <= trial.user_attrs.get("epochs", 0):
            # Tune restarted the trial after its worker died (FailureConfig): count it
            attrs["restarts"] = trial.user_attrs.get("restarts", 0) + 1
        set_user_attrs(trial, attrs)
        killpoints.reached("trial_result")

    @_stops_when_halted
    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        trial = self.live.pop(trial_id, None)
        if trial is None:
            return
        if error or not result:
            self._fail(
                trial,
                "worker error (the Ray worker died or raised; see the worker log that "
                "`autostudent status` names)",
            )
            return
        if result.get("failure"):
            if result.get("worker"):
                trial.set_user_attr("worker", result["worker"])
            self._fail(
                trial,
                result["failure"],
                result.get("constraints"),
                result.get("sizes"),
                result.get("traceback"),
            )
            return
        self.failures = 0
        attrs = {key: result[key] for key in RESULT_KEYS}
        if result.get("worker"):
            attrs["worker"] = result["worker"]
        set_user_attrs(trial, attrs)  # one transaction, not one per key
        _constrain(trial, cap_constraints(result, self.caps))
        if result["epochs"] < self.max_epochs:
            self.study.tell(trial, state=TrialState.PRUNED)  # low fidelity: kept out of the front
        else:
            self.study.tell(trial, objs.values(self.objectives, result))
        self.done += 1
        killpoints.reached("trial_told")
        self.on_change()


def _constrain(trial: optuna.trial.Trial, constraints: Mapping[str, float]) -> None:
    """Store constraint values (value - cap, feasible when <= 0) not stored yet."""
    stored = trial.storage.get_trial(trial._trial_id).constraints
    for key, value in constraints.items():
        if key not in stored:
            trial.set_constraint(key, value)


RESULT_KEYS = (
    "val_accuracy",
    "params",
    "flops",
    "latency_ms",
    "train_seconds",
    "img_per_s",
    "epochs",
    "curve",
    "setup_seconds",
    "eval_seconds",
)


def prescreen(candidate: Candidate, caps: Caps) -> dict[str, float]:
    """The student's params and FLOPs, counted from its spec in the driver (no module is
    built); raises TrialFailed, carrying the caps' constraint values, when one is over."""
    sizes = count_sizes(candidate.spec)
    check_caps(sizes.params, sizes.flops, None, caps)
    return {"params": sizes.params, "flops": sizes.flops}


def size_constraints(factory: CandidateFactory, caps: Caps) -> KnownConstraints | None:
    """The size caps as a known function of a point, for the sampler: ``value - cap`` of the
    point's params / FLOPs, counted from its spec (~10 ms, nothing built or trained), so that
    it never proposes an over-cap student. None when no size is capped."""
    size_caps = Caps(caps.max_params, caps.max_flops, None)
    keys = tuple(cap_constraints({"params": 0, "flops": 0}, size_caps))
    if not keys:
        return None
    fixed = {
        name: _only(distribution)
        for name, distribution in factory.distributions().items()
        if distribution.single()
    }

    def evaluate(point: Mapping[str, Any]) -> dict[str, float]:
        try:
            sizes = count_sizes(factory.make(-1, {**fixed, **point}).spec)
        except TrialFailed:  # no architecture at this point: as bad as over every cap
            return dict.fromkeys(keys, math.inf)
        return cap_constraints({"params": sizes.params, "flops": sizes.flops}, size_caps)

    return KnownConstraints(keys, evaluate)


def _only(distribution: BaseDistribution) -> Any:
    return distribution.choices[0] if hasattr(distribution, "choices") else distribution.low


def run(
    searcher,
    payload: dict,
    resources: Resources,
    *,
    max_epochs: int,
    early_stopping: str,
    grace_period: int,
    reduction_factor: int,
    storage_path: str,
    name: str,
    worker_log: Path | None = None,
) -> None:
    """Run Tune until the searcher says FINISHED; what its workers print goes to
    ``worker_log`` (worker_log.py), never to the terminal."""
    from ray import tune

    from autostudent.early_stopping import make_scheduler

    scheduler = make_scheduler(
        early_stopping,
        objectives=searcher.objectives,
        max_epochs=max_epochs,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
    )
    trainable = tune.with_resources(
        tune.with_parameters(worker.train_candidate, payload=payload),
        {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric="val_accuracy",
            mode="max",
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=-1,
            max_concurrent_trials=resources.workers,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=2),  # a dead worker: run it again
            stop=Halt(searcher) if isinstance(searcher, StudySearcher) else None,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )
    # Tune's own result files are off (the study DB holds every result): keep its analysis quiet.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # On Ctrl-C Tune suggests `Tuner.restore`; autostudent resumes from the study instead.
    logging.getLogger("ray.tune.tune").setLevel(logging.ERROR)
    with tune_settings(resources):
        if worker_log is None:
            tuner.fit()
            return
        with WorkerLog(worker_log, name):
            tuner.fit()


@contextlib.contextmanager
def tune_settings(resources: Resources) -> Iterator[None]:
    """Tune's settings for one search, read from the environment while ``fit`` runs; a value the
    user exported is kept. Restored afterwards: a second search in the same process (the Python
    API) gets its own ``TUNE_MAX_PENDING_TRIALS_PG``, not the first one's. (Left set, one
    worker's setting held a later 2-worker search on a two-node cluster to one node.)"""
    settings = {
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # the study database holds every result
        "RAY_AIR_NEW_OUTPUT": "0",
        "TUNE_MAX_PENDING_TRIALS_PG": str(resources.workers),
        # Tune's experiment snapshots are for Tune's own restore, which autostudent does not
        # use (the study database is the truth): every 10 s they cost driver CPU.
        "TUNE_GLOBAL_CHECKPOINT_S": "600",
    }
    ours = {key: value for key, value in settings.items() if key not in os.environ}
    os.environ.update(ours)
    try:
        yield
    finally:
        for key in ours:
            os.environ.pop(key, None)


def check_ray_address(address: str | None, timeout: float = 5.0) -> None:
    """A ``host:port`` Ray address must answer before anything is written ('auto' and
    ``ray://`` addresses are left to ``ray.init``)."""
    if not address or address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address: {address!r} is not host:port (e.g. 10.0.0.5:6379) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(
            f"--ray-address: cannot reach the Ray head at {address} "
            f"({exc.strerror or type(exc).__name__}); is `ray start --head` running there?"
        ) from None


class _TokenNotice(logging.Filter):
    """Drops Ray's notice that a new local cluster uses token authentication, its default: a
    WARNING on the user's terminal at every search, about nothing they did or need to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this")


def quiet_token_notice() -> None:
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, _TokenNotice) for f in log.filters):
        log.addFilter(_TokenNotice())


def init_ray(address: str | None, resources: Resources) -> None:
    import ray

    if ray.is_initialized():
        return
    kwargs: dict = {
        "include_dashboard": False,
        # workers' output comes to the driver, which writes it to the search's worker log
        "log_to_driver": True,
        "logging_level": logging.WARNING,
        "configure_logging": True,
        # every worker process starts with the allocator settings training needs (allocator.py)
        "runtime_env": {"env_vars": worker_env()},
    }
    if address:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:  # no cluster, bad token
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"--ray-address: cannot join the Ray cluster at {address}: {reason}"
            ) from None
    else:
        # "local": a Ray of its own. Without an address, ray.init joins the cluster that
        # `ray start` last started on this machine (/tmp/ray/ray_current_cluster): a search
        # without --ray-address would run its trials on someone else's cluster, or fail there.
        cpus = max(os.cpu_count() or 1, resources.workers * resources.cpus_per_trial)
        quiet_token_notice()
        try:
            ray.init(address="local", num_cpus=cpus, num_gpus=None, **kwargs)
        except Exception as exc:  # Ray's own start-up failures are plain Exceptions
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RayFailed(
                f"ray: the local Ray node did not start ({reason}); nothing was trained, "
                "rerun the same command (a study continues where it was)"
            ) from exc
    take_over_ray_printer()
