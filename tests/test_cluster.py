"""A real two-node Ray cluster (a head and a second node, separate `ray start` processes, 1 CPU
each, Ray 2.60's token authentication) running one search against PostgreSQL.

Each node runs `ray start --block` in its own process group and is torn down by killing that
group: `ray stop` would stop every Ray process on the machine, other tests' clusters included.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
import yaml
from optuna.trial import TrialState

from autostudent import study as studydb
from autostudent.lease import INTERVAL_S
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow  # a two-node Ray cluster and a search: minutes
RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # this venv's Ray, whatever the shebangs say


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One `ray start --block` process; ``ready`` once it printed that the node started."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*RAY, "start", "--block", "--num-cpus", "1", "--disable-usage-stats", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.log: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.log.append(line)
            if "Ray runtime started" in line:
                self.ready.set()

    def wait(self, timeout: float) -> None:
        if not self.ready.wait(timeout):
            raise RuntimeError("ray node did not start:\n" + "".join(self.log[-30:]))


def stop(nodes: list[Node]) -> None:
    """SIGTERM every node's process group (a blocking `ray start` stops its node), give them
    5 s, then SIGKILL whatever is left of their process trees (raylet workers included)."""
    family = [p for node in nodes for p in (node.proc.pid, *descendants(node.proc.pid))]
    for node in nodes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.proc.pid, signal.SIGTERM)
    deadline = time.time() + 5
    while time.time() < deadline and any(node.proc.poll() is None for node in nodes):
        time.sleep(0.2)
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for node in nodes:
        node.proc.wait(timeout=10)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def two_nodes() -> Iterator[tuple[str, dict[str, str]]]:
    """A head and a second node on this machine: (address, env with the cluster's token)."""
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths are limited
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,  # this cluster's own token
        "PYTHONWARNINGS": "ignore",
    }
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address", "127.0.0.1", "--dashboard-agent-listen-port"]
    nodes = [
        Node(
            [
                "--head",
                "--port",
                str(port),
                "--temp-dir",
                temp,
                "--include-dashboard",
                "false",
                *common,
                str(free_port()),
            ],
            env,
        )
    ]
    try:
        nodes[0].wait(120)
        nodes.append(Node(["--address", address, *common, str(free_port())], env))
        nodes[1].wait(120)
        yield address, env
    finally:
        stop(nodes)
        shutil.rmtree(temp, ignore_errors=True)


def test_search_across_two_ray_nodes_survives_a_dead_worker_and_a_database_outage(
    tmp_path, teacher_file, two_nodes, postgres_url
):
    address, env = two_nodes
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    server = sa.engine.make_url(postgres_url)
    proxy = TcpProxy((server.host, server.port)).start()  # the driver reaches PostgreSQL through it
    config = {
        "study": name,
        "storage": server.set(port=proxy.port).render_as_string(),
        "seed": 0,
        "cache_dir": str(tmp_path / "cache"),
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"path": str(teacher_file)},
        "space": {"name": "chain", "overrides": {"width": {"low": 4, "high": 8}}},
        "kd": {"losses": ["kd"]},
        "budget": {"epochs": 8, "batch_size": 16},  # long enough to kill a worker mid-trial
        "search": {
            "n_trials": 4,
            "workers": 2,
            "n_startup_trials": 4,
            "sampler": "random",
            "early_stopping": "none",
        },
    }
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "autostudent", "search", str(cfg), "--quiet"]
    log = tmp_path / "driver.log"
    driver = None
    try:
        with log.open("w") as err:
            driver = subprocess.Popen(
                [*cmd, "--ray-address", address], env=env, stdout=subprocess.DEVNULL, stderr=err
            )
            _wait(lambda: _exists(postgres_url, name))
            study = optuna.load_study(study_name=name, storage=postgres_url)
            # both nodes train students (worker = "<ray node id[:12]>:<pid>")
            _wait(lambda: len(_nodes(study)) == 2, what="finished trials on both nodes")
            # a Ray worker killed mid-trial: Tune restarts the trial, the study records it once
            victim = _wait(lambda: _running_with_worker(study, at_most=4))
            os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
            # the database away once a trial finished: the driver waits and goes on. Longer
            # than a lease heartbeat (lease.INTERVAL_S), so that the driver meets the outage
            # whatever its trials are doing (on a busy machine an epoch may outlast it)
            _wait(lambda: study.get_trials(states=studydb.FINISHED))
            proxy.stop()
            time.sleep(INTERVAL_S + 1.5)
            proxy.start()
            driver.wait(timeout=300)
        assert driver.returncode == 0, log.read_text()[-3000:]

        study = optuna.load_study(study_name=name, storage=postgres_url)
        trials = study.get_trials()
        finished = [t for t in trials if t.state in studydb.FINISHED]
        assert len(finished) == 4
        assert all(t.state in (*studydb.FINISHED, TrialState.FAIL) for t in trials)
        # every trial recorded once: one Optuna trial per configuration run, none twice
        keys = [json.dumps(t.params, sort_keys=True) for t in trials]
        assert len(set(keys)) == len(keys)
        # the killed worker's trial was restarted and finished, not failed
        again = study.trials[victim.number]
        assert again.state in studydb.FINISHED and again.user_attrs["restarts"] >= 1
        # the outage is counted where a user looks
        status = studydb.summary(study)
        assert status["storage_retries"] >= 1 and status["driver"]["released"]
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        proxy.stop()
        if _exists(postgres_url, name):
            optuna.delete_study(study_name=name, storage=postgres_url)

    # a head that is not there: exit 2, one line, before anything is written
    gone = subprocess.run(
        [*cmd, "--ray-address", f"127.0.0.1:{free_port()}", "--study", f"{name}-x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = gone.stderr.strip()
    assert gone.returncode == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("error: --ray-address: cannot reach the Ray head at 127.0.0.1:"), err
    assert not _exists(postgres_url, f"{name}-x")


def _wait(found, timeout: float = 240, what: str = ""):
    """Poll ``found()`` until it returns something true."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or found}")


def _nodes(study: optuna.Study) -> set[str]:
    """The Ray nodes that finished trials."""
    done = study.get_trials(deepcopy=False, states=studydb.FINISHED)
    return {t.user_attrs["worker"].split(":")[0] for t in done}


def _running_with_worker(study: optuna.Study, at_most: int):
    """A running trial whose worker is known, at most ``at_most`` epochs in: killed, it has
    epochs left to restart (the driver may read a trial's last epoch late; a trial killed
    after its last one finishes without a restart)."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    fits = [t for t in running if t.user_attrs.get("worker")]
    return next((t for t in fits if t.user_attrs.get("epochs", 0) <= at_most), None)


def _exists(url: str, name: str) -> bool:
    return name in [s.study_name for s in optuna.get_all_study_summaries(url)]
