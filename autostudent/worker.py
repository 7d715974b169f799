"""The Ray Tune trainable: what a Ray worker process runs for one trial.

Every search starts its Ray workers afresh, and each pays its imports before its first trial,
so this module stays light: torch, Ray Tune's trainable (already imported by the worker that
runs it) and ``autostudent.trial``; nothing of the driver's (Optuna, SQLAlchemy, the sampler,
the search spaces' generators).
"""

from __future__ import annotations

import os
import warnings

import torch
from ray import tune

from autostudent.device import trial_device
from autostudent.errors import TrialFailed
from autostudent.trial import KDSettings, TrialResult, run_trial


def train_candidate(config: dict, payload: dict) -> None:
    """One KD trial in a worker, reporting after every epoch; a failure is reported with its
    reason (and its sizes and cap constraints when known), never raised into Tune."""
    torch.set_num_threads(payload["threads"])
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    worker = worker_name()

    def report(result: TrialResult) -> None:
        tune.report({"epoch": result.epochs, "worker": worker, **result.as_dict()})

    try:
        run_trial(
            config["spec"],
            KDSettings(**config["kd"]),
            payload["data"],
            payload["outputs"],
            budget=payload["budget"],
            seed=config["seed"],
            caps=payload["caps"],
            device=trial_device(payload["device"]),
            report=report,
            latency_runtime=payload.get("latency_runtime", "torch"),
        )
    except TrialFailed as exc:  # with its sizes and cap constraints, when it knows them
        tune.report(
            {
                "epoch": 0,
                "val_accuracy": 0.0,
                "worker": worker,
                "failure": str(exc),
                "constraints": exc.constraints,
                "sizes": exc.sizes,
            }
        )
    except Exception as exc:  # a bug or a bad architecture must not stop the search
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        tune.report({"epoch": 0, "val_accuracy": 0.0, "worker": worker, "failure": reason})


def worker_name() -> str:
    """Which Ray worker process ran a trial: ``node:pid`` (the dashboard's timeline lanes), the
    node being Ray's node id (several Ray nodes may share one host and IP address)."""
    import ray

    try:
        node = ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # outside Ray (tests calling the trainable directly)
        node = "local"
    return f"{node}:{os.getpid()}"
