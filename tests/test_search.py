"""End to end: real Ray, real SQLite and PostgreSQL, a real (small) dataset and teacher."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from autostudent import study as studydb
from autostudent.config import load_config
from autostudent.dashboard._data import load_study_data
from autostudent.dashboard._page import render_report
from autostudent.driver import prepare, run_search
from autostudent.errors import SearchStopped, UserError
from autostudent.measure import count_params
from autostudent.student import build_student


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    from autostudent.executor import Resources, init_ray

    init_ray(None, Resources(workers=2))
    yield
    ray.shutdown()


def write_config(tmp_path: Path, teacher_file: Path, **overrides) -> Path:
    config = {
        "study": "e2e",
        "storage": f"sqlite:///{tmp_path / 'e2e.db'}",
        "seed": 0,
        "cache_dir": str(tmp_path / "cache"),
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"path": str(teacher_file)},
        "space": {"name": "chain", "overrides": {"width": {"low": 4, "high": 8}}},
        "kd": {"losses": ["kd", "rkd"]},
        "budget": {"epochs": 2, "batch_size": 64},
        "caps": {"max_params": 20000},
        "search": {"n_trials": 4, "workers": 2, "n_startup_trials": 3, "sampler": "tpe"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def states(study: optuna.Study) -> dict[str, int]:
    return studydb.summary(study)["states"]


@pytest.mark.slow  # a real search
def test_search_finishes_n_trials_and_stores_everything(tmp_path, teacher_file, ray_cluster):
    study = run_search(load_config(write_config(tmp_path, teacher_file)), show_progress=False)
    st = states(study)
    assert st["COMPLETE"] + st["PRUNED"] == 4
    assert st["RUNNING"] == 0
    assert study.user_attrs["teacher"]["sha256"]
    assert study.user_attrs["data"]["name"] == "digits"
    assert study.metric_names == ["accuracy", "params"]  # optuna-dashboard's axis labels
    for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)):
        a = t.user_attrs
        node, pid = a["worker"].rsplit(":", 1)  # the Ray worker process that ran it
        assert node and int(pid) != os.getpid()
        # the stored spec alone rebuilds the exact student that was measured
        assert count_params(build_student(a["spec"])) == a["params"]
        assert len(a["curve"]) == a["epochs"] <= a["max_epochs"] == 2
        assert {"kd_loss", "kd_temperature", "kd_alpha"} <= set(t.params)
        if t.state == TrialState.COMPLETE:
            assert t.values == [a["val_accuracy"], a["params"]]
        else:
            assert a["epochs"] < 2
    summary = studydb.summary(study)
    assert summary["pareto"]
    assert summary["hypervolume"] > 0
    assert all(r["params"] <= 20000 for r in summary["pareto"])

    # resume: a larger N continues the same study; finished trials are not run again
    before = {t.number: t.datetime_complete for t in study.get_trials(states=studydb.FINISHED)}
    config = load_config(write_config(tmp_path, teacher_file, search={"n_trials": 6}))
    study = run_search(config, show_progress=False)
    assert states(study)["COMPLETE"] + states(study)["PRUNED"] == 6
    after = {t.number: t.datetime_complete for t in study.get_trials(states=studydb.FINISHED)}
    assert all(after[n] == done for n, done in before.items())
    # the seeded sampler does not replay the first run's proposals
    points = [json.dumps(t.params, sort_keys=True) for t in study.trials]
    assert len(set(points)) == len(points)

    # the trials table holds every trial
    frame = studydb.trials_frame(study)
    assert len(frame) == len(study.trials)
    assert {"val_accuracy", "params", "failure", "curve"} <= set(frame.columns)


@pytest.mark.slow  # a real search
def test_botorch_search_no_fallbacks_no_over_cap_trials(tmp_path, teacher_file, ray_cluster, cli):
    # the space of the test below, where the random sampler proposes over-cap students; the cap
    # half the teacher's params (teacher/2: 9,905 of its 19,810)
    cfg = write_config(
        tmp_path,
        teacher_file,
        study=f"botorch-{uuid.uuid4().hex[:8]}",
        space={"name": "chain", "overrides": {"width": {"low": 4, "high": 16}}},
        caps={"max_params": "teacher/2"},
        search={"n_trials": 5, "workers": 2, "n_startup_trials": 2, "sampler": "botorch"},
    )
    study = run_search(load_config(cfg), show_progress=False)
    summary = studydb.summary(study)
    assert summary["states"]["COMPLETE"] + summary["states"]["PRUNED"] == 5
    assert summary["states"]["FAIL"] == 0  # sizes are known: no proposal over the cap
    assert summary["fallbacks"] == 0
    cap = study.user_attrs["teacher"]["params"] // 2
    assert 4000 < cap < 12000  # the search's students straddle it (the test below)
    # the study stores the number (what status, the dashboard and export read) and what was given
    assert study.user_attrs["config"]["caps"]["max_params"] == cap
    assert study.user_attrs["caps_given"]["max_params"] == "teacher/2"
    assert study.user_attrs["hv_reference"]["params"] == cap
    for trial in study.trials:  # every trial stores its cap constraint (value - cap)
        assert trial.constraints["params"] == trial.user_attrs["params"] - cap
    # status gives both: the number and, where it was a fraction, the fraction
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    status = ["status", "--storage", url, "--study", study.study_name]
    assert f"  caps: params ≤ {cap:,} (teacher/2)\n" in cli(*status)[1]
    shown = json.loads(cli(*status, "--json")[1])
    assert (shown["caps"], shown["caps_given"]["max_params"]) == ({"max_params": cap}, "teacher/2")
    # the same study run again with a plain number: what was given no longer holds, so it goes
    given = yaml.safe_load(cfg.read_text())
    cfg.write_text(yaml.safe_dump({**given, "caps": {"max_params": 9000}}))
    study = run_search(load_config(cfg), show_progress=False)  # 5 finished: nothing more runs
    assert study.user_attrs["config"]["caps"]["max_params"] == 9000
    assert study.user_attrs["caps_given"] is None
    assert "  caps: params ≤ 9,000\n" in cli(*status)[1]


@pytest.mark.slow  # two real searches
def test_one_worker_same_file_and_seed_give_the_same_trials(tmp_path, teacher_file, ray_cluster):
    """docs/study-file.md's promise: with one worker the same file and seed give the same
    students, KD settings and accuracies, trial by trial (the BoTorch phase included)."""

    def run(name: str, seed: int) -> list[tuple]:
        cfg = write_config(
            tmp_path,
            teacher_file,
            study=name,
            seed=seed,
            search={"n_trials": 5, "workers": 1, "n_startup_trials": 2, "sampler": "botorch"},
        )
        study = run_search(load_config(cfg), show_progress=False)
        return [
            (t.state, json.dumps(t.user_attrs["spec"], sort_keys=True), t.params, t.values)
            for t in sorted(study.trials, key=lambda t: t.number)
        ]

    first = run("seed0-a", 0)
    assert len(first) == 5
    assert run("seed0-b", 0) == first
    assert [t[1] for t in run("seed1", 1)] != [t[1] for t in first]


@pytest.mark.slow  # a real search
def test_caps_fail_with_reason_and_do_not_count(tmp_path, teacher_file, ray_cluster):
    cfg = write_config(
        tmp_path,
        teacher_file,
        space={"name": "chain", "overrides": {"width": {"low": 4, "high": 16}}},
        caps={"max_params": 12000},
        search={"n_trials": 3, "workers": 2, "n_startup_trials": 3, "sampler": "random"},
    )
    study = run_search(load_config(cfg), show_progress=False)
    st = states(study)
    assert st["COMPLETE"] + st["PRUNED"] == 3
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert all("over the cap" in t.user_attrs["failure"] for t in failed)
    assert failed, "width 4-16 under a 12,000-param cap must propose some over-cap students"
    assert all(t.user_attrs["params"] <= 12000 for t in study.get_trials(states=studydb.FINISHED))

    # nothing fits: the search stops with a reason instead of spinning
    cfg = write_config(
        tmp_path,
        teacher_file,
        study="nothing-fits",
        caps={"max_params": 100},
        search={"n_trials": 2, "workers": 2, "n_startup_trials": 2, "sampler": "random"},
    )
    with pytest.raises(SearchStopped, match="over the cap") as stopped:
        run_search(load_config(cfg), show_progress=False)
    # and names what a sampler without the caps cannot do about it
    assert "sampler random proposes without knowing the caps" in str(stopped.value)


def test_invalid_input_writes_nothing(tmp_path, teacher_file):
    db = tmp_path / "e2e.db"
    bad_teacher = write_config(tmp_path, tmp_path / "missing.pt2")
    with pytest.raises(UserError, match=r"teacher\.path"):
        run_search(load_config(bad_teacher), show_progress=False)
    bad_space = write_config(
        tmp_path, teacher_file, space={"name": "chain", "overrides": {"nope": 1}}
    )
    with pytest.raises(UserError, match="nope"):
        run_search(load_config(bad_space), show_progress=False)
    assert not db.exists()


def _finished_and_running(db: Path) -> tuple[int, int]:
    import sqlite3

    if not db.exists():
        return 0, 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            rows = dict(
                conn.execute("select state, count(*) from trials group by state").fetchall()
            )
    except sqlite3.OperationalError:
        return 0, 0
    return rows.get("COMPLETE", 0) + rows.get("PRUNED", 0), rows.get("RUNNING", 0)


def _runs_trials(db: Path, pid: int, after: int) -> bool:
    """Whether the driver ``pid`` holds the study's lease and runs a trial of its own (one
    created after trial id ``after``: RUNNING trials of a killed driver are recovered later)."""
    import sqlite3

    try:
        with sqlite3.connect(db, timeout=1) as conn:
            (holder,) = conn.execute("select pid from autostudent_drivers").fetchone() or (0,)
            (mine,) = conn.execute(
                "select count(*) from trials where state = 'RUNNING' and trial_id > ?", (after,)
            ).fetchone()
            (done,) = conn.execute(
                "select count(*) from trials where state in ('COMPLETE', 'PRUNED')"
            ).fetchone()
    except sqlite3.OperationalError:
        return False
    return holder == pid and mine >= 1 and done >= 1


def _wait_for_own_trial(db: Path, proc: subprocess.Popen, after: int) -> None:
    """Until the driver ``proc`` runs a trial of its own; fail (killing what it started) if it
    never does."""
    deadline = time.time() + 240
    while time.time() < deadline:
        if _runs_trials(db, proc.pid, after):
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the search never had a finished and a running trial at once")


def _last_trial_id(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute("select coalesce(max(trial_id), 0) from trials").fetchone()[0]


def _search_command(tmp_path: Path, teacher_file: Path, n: int) -> tuple[Path, list[str]]:
    """A study slow enough to interrupt (3 epochs, no early stopping) and its CLI command."""
    cfg = write_config(
        tmp_path,
        teacher_file,
        budget={"epochs": 3, "batch_size": 32},
        search={
            "n_trials": n,
            "workers": 2,
            "n_startup_trials": 2,
            "sampler": "tpe",
            "early_stopping": "none",
        },
    )
    return tmp_path / "e2e.db", [sys.executable, "-m", "autostudent", "search", str(cfg), "--quiet"]


def _params(trial) -> dict:
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def _killed_at(cmd: list[str], env: dict, point: str, db: Path) -> int:
    """Run the driver with a kill point armed; it must die there. RUNNING trials it left."""
    log = db.with_name(f"killed-at-{point.replace(':', '-')}.log")
    with log.open("w") as err:  # a file, not a pipe: Ray processes may outlive the driver
        proc = subprocess.Popen(
            cmd,
            env={**env, "AUTOSTUDENT_KILL_AT": point},
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        proc.wait(timeout=300)
    with contextlib.suppress(ProcessLookupError):  # what the dead driver started (Ray)
        os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL, f"{point}: {log.read_text()[-2000:]}"
    return _finished_and_running(db)[1]


@pytest.mark.slow  # a real search
def test_sigkill_or_ctrl_c_at_any_point_then_resume_ends_with_exactly_n(tmp_path, teacher_file):
    n = 5
    db, cmd = _search_command(tmp_path, teacher_file, n)
    # a paused driver's heartbeat stops: the grace is longer than the pause can be here
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "AUTOSTUDENT_DRIVER_GRACE": "600"}
    cache = tmp_path / "cache" / "teacher_outputs"
    left_running = 0

    # killed while writing the teacher outputs: no entry in place (a dead writer's partial)
    left_running += _killed_at(cmd, env, "teacher_cache", db)
    assert not list(cache.glob("*.pt")) and list(cache.glob("*.partial"))
    # killed inside a database transaction, before its COMMIT (setup done, proposals started)
    left_running += _killed_at(cmd, env, "db_commit:40", db)
    (entry,) = cache.glob("*.pt")
    stamp = (entry.stat().st_ino, entry.stat().st_mtime_ns)
    assert not list(cache.glob("*.partial"))  # the dead writer's partial file was cleaned up
    # killed between trials: one outcome stored, the next not asked for yet
    left_running += _killed_at(cmd, env, "trial_told:1", db)

    # killed mid-trial from outside, with everything it started (Ray included)
    last = _last_trial_id(db)
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_for_own_trial(db, proc, last)
    # one driver per study: a second one on the live study is refused, nothing written (the
    # first is paused meanwhile so that it cannot finish first on a busy machine)
    os.killpg(proc.pid, signal.SIGSTOP)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    refusal = second.stderr.strip()
    assert second.returncode == 2 and len(refusal.splitlines()) == 1, refusal
    assert f"study 'e2e' is being run by a live driver on {socket.gethostname()}" in refusal
    assert f"(pid {proc.pid}," in refusal
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
    proc.wait()
    done_before, running_before = _finished_and_running(db)
    assert running_before >= 1 and done_before < n
    left_running += running_before

    # Ctrl-C mid-trial: exit 130 with one line saying how to go on, nothing left RUNNING (the
    # driver recovers its own trials, after those the SIGKILLed driver left)
    last = _last_trial_id(db)
    log = tmp_path / "ctrl-c.log"
    with log.open("w") as err:
        interrupted_run = subprocess.Popen(
            cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err
        )
        _wait_for_own_trial(db, interrupted_run, last)
        interrupted_run.send_signal(signal.SIGINT)
        interrupted_run.wait(timeout=120)
    assert interrupted_run.returncode == 130, log.read_text()[-2000:]
    assert "run the same command again" in log.read_text().strip().splitlines()[-1]
    assert _finished_and_running(db)[1] == 0
    recovered = studydb.summary(studydb.load(f"sqlite:///{db}", "e2e"))["recoveries"]
    assert recovered > left_running  # the ones before, and the Ctrl-C'd driver's own
    left_running = recovered

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "Token authentication" not in rerun.stderr  # Ray's notice about its own default
    study = studydb.load(f"sqlite:///{db}", "e2e")
    st = states(study)
    assert st["COMPLETE"] + st["PRUNED"] == n
    assert st["RUNNING"] == 0
    interrupted = [
        t
        for t in study.trials
        if t.state == TrialState.FAIL and t.user_attrs["failure"].startswith("interrupted")
    ]
    assert len(interrupted) == left_running  # every trial a kill left behind, recovered once
    # the interrupted trials' parameters were queued again and run first
    requeued = [t for t in study.trials if "requeued_from" in t.user_attrs]
    assert sorted(t.user_attrs["requeued_from"] for t in requeued) == sorted(
        t.number for t in interrupted
    )
    for t in requeued:
        # a driver killed inside study.ask leaves a trial with only some params: those are kept
        # and the sampler completes the rest (a requeued trial not run yet holds them as fixed)
        assert _params(t).items() >= _params(study.trials[t.user_attrs["requeued_from"]]).items()
    # no finished configuration ran twice
    finished = study.get_trials(states=studydb.FINISHED)
    keys = [json.dumps(t.params, sort_keys=True) for t in finished]
    assert len(set(keys)) == len(keys)
    # the teacher outputs were computed once, by the first run that lived to store them
    assert (entry.stat().st_ino, entry.stat().st_mtime_ns) == stamp
    # status: the last driver stopped cleanly, and what the kills cost
    summary = studydb.summary(study)
    assert summary["recoveries"] == left_running
    driver = summary["driver"]
    assert driver["released"] and not driver["alive"] and driver["pid"] != proc.pid
    assert sum(f"pid {proc.pid})" in t.user_attrs["failure"] for t in interrupted) == (
        running_before
    )


@pytest.mark.slow  # a real search
def test_postgres_storage_keeps_its_password_secret(
    tmp_path, teacher_file, ray_cluster, capfd, postgres_url
):
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    password = f"s3cret-{uuid.uuid4().hex[:6]}"  # trust auth: PostgreSQL accepts any password
    url = postgres_url.replace("postgres@", f"postgres:{password}@")
    unreachable = url.replace(f":{url.rsplit(':', 1)[1]}", ":1/test")  # nothing on port 1
    cfg = write_config(
        tmp_path,
        teacher_file,
        storage=url,
        study=name,
        search={"n_trials": 3, "workers": 2, "n_startup_trials": 3, "sampler": "tpe"},
    )
    try:
        study = run_search(load_config(cfg), show_progress=False)
        st = states(study)
        assert st["COMPLETE"] + st["PRUNED"] == 3
        # what another machine of the cluster sees: the same study through the same URL
        again = optuna.load_study(study_name=name, storage=postgres_url)
        assert len(again.trials) == len(study.trials)
        assert studydb.summary(again)["pareto"] == studydb.summary(study)["pareto"]
        # the stored config keeps user@host/db, not the password
        assert again.user_attrs["config"]["storage"] == postgres_url
        readable = json.dumps(
            [again.user_attrs, again._storage.get_study_system_attrs(again._study_id)]
            + [[t.user_attrs, t.system_attrs, t.params] for t in again.trials],
            default=str,
        )
        assert password not in readable
        assert password not in _sql_dump(postgres_url)
        assert password not in render_report([load_study_data(url, name)])
        captured = capfd.readouterr()
        assert password not in captured.out + captured.err
        # nor in anything the search left on disk (Tune's experiment folder, the cache)
        written = [f for f in tmp_path.rglob("*") if f.is_file() and f != cfg]
        assert written and not [f for f in written if password.encode() in f.read_bytes()]
        # status, its JSON and an error line name the database without the password
        commands = {
            "status": ["status", "--storage", url, "--study", name],
            "json": ["status", "--storage", url, "--study", name, "--json"],
            "no study": ["status", "--storage", url, "--study", "nope"],
            "unreachable": ["status", "--storage", unreachable, "--study", name],
        }
        runs = {key: _autostudent(*args) for key, args in commands.items()}
        out = {key: run.communicate(timeout=120) for key, run in runs.items()}
        assert runs["json"].returncode == 0, out["json"][1]
        assert json.loads(out["json"][0])["study"] == name
        assert runs["status"].returncode == 0 and name in out["status"][0]
        for key in ("no study", "unreachable"):
            err = out[key][1].strip()
            assert runs[key].returncode == 2 and len(err.splitlines()) == 1, err
            assert err.startswith("error: --s") and "postgres:***@127.0.0.1" in err, err
        assert all(password not in o + e for o, e in out.values())
    finally:
        optuna.delete_study(study_name=name, storage=postgres_url)


def _sql_dump(url: str) -> str:
    """Every row of every table of the database, as text."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return "\n".join(
                str(row) for t in tables for row in conn.execute(sa.text(f'SELECT * FROM "{t}"'))
            )
    finally:
        engine.dispose()


def _autostudent(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "autostudent", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.slow  # a real search
def test_a_trial_that_raises_keeps_its_traceback_and_the_workers_log(tmp_path, teacher_file):
    """A bug in a trial's own code (a fault injected after its first epoch, in every Ray worker
    process's first trial): the trial fails with its traceback, shown by `trials`, and what the
    workers printed is in the worker log that `status` names, beside the study file."""
    cfg = write_config(
        tmp_path,
        teacher_file,
        budget={"epochs": 1, "batch_size": 64},
        search={"n_trials": 2, "workers": 2, "n_startup_trials": 2, "sampler": "random"},
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "AUTOSTUDENT_RAISE_AT": "trial_epoch:1"}
    cmd = [sys.executable, "-m", "autostudent"]
    search = subprocess.run(
        [*cmd, "search", str(cfg), "--quiet"], env=env, capture_output=True, text=True, timeout=600
    )
    assert search.returncode == 0, search.stderr[-3000:]
    # the driver's terminal shows none of the workers' output
    assert "InjectedFault" not in search.stdout + search.stderr
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    where = ["--storage", url, "--study", "e2e"]
    listed = subprocess.run(
        [*cmd, "trials", *where, "--format", "json"], capture_output=True, text=True, check=True
    )
    rows = json.loads(listed.stdout)
    failed = [r for r in rows if r["failure"] and r["failure"].startswith("InjectedFault")]
    assert failed and len([r for r in rows if r["state"] in ("COMPLETE", "PRUNED")]) == 2
    for row in failed:
        assert row["state"] == "FAIL"
        assert row["failure"].startswith("InjectedFault: injected fault at trial_epoch")
        trace = row["traceback"]
        assert trace.startswith("Traceback (most recent call last)") and len(trace) <= 4000
        assert 'trial.py", line' in trace and "in run_trial" in trace
        assert trace.rstrip().endswith(f"killpoints.{row['failure']}")  # the error, in full
    # a reasoned failure (a cap) or a finished trial has no traceback
    assert all(r["traceback"] is None for r in rows if r not in failed)

    status = subprocess.run(
        [*cmd, "status", *where, "--json"], capture_output=True, text=True, check=True
    )
    log = Path(json.loads(status.stdout)["worker_log"])
    assert log == tmp_path / "e2e.workers.log"
    text = log.read_text()
    assert text.startswith("=== search of study 'e2e' started")
    # each failed trial's whole traceback, printed by its worker on stderr
    for row in failed:
        assert f"trial {row['number']} failed:" in text
    assert text.count("InjectedFault: injected fault at trial_epoch") >= len(failed)
    shown = subprocess.run([*cmd, "status", *where], capture_output=True, text=True, check=True)
    assert f"worker log: {log}" in shown.stdout


@pytest.mark.slow  # a real search
def test_status_and_trials_cli(tmp_path, teacher_file, ray_cluster):
    cfg = write_config(
        tmp_path,
        teacher_file,
        search={"n_trials": 2, "workers": 2, "n_startup_trials": 2, "sampler": "random"},
    )
    run_search(load_config(cfg), show_progress=False)
    url = f"sqlite:///{tmp_path / 'e2e.db'}"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "autostudent",
            "status",
            "--storage",
            url,
            "--study",
            "e2e",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    status = json.loads(out.stdout)
    assert {
        "study",
        "directions",
        "objectives",
        "states",
        "pareto",
        "hypervolume",
        "teacher",
    } <= set(status)
    assert status["directions"] == ["maximize", "minimize"]
    assert status["teacher"]["params"] > 0
    assert status["teacher"]["input"] == "normalised"  # the images it was fed (teacher.input)
    n_val = len(prepare(load_config(cfg)).data.y_val)
    assert status["val_images"] == n_val
    for row in status["pareto"]:  # every accuracy is a count of those images
        assert row["accuracy"] * n_val == pytest.approx(round(row["accuracy"] * n_val))
    text = subprocess.run(
        [sys.executable, "-m", "autostudent", "status", "--storage", url, "--study", "e2e"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"validation: {n_val:,} images, one image {1 / n_val:.4f} of accuracy" in text
    csv = tmp_path / "trials.csv"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "autostudent",
            "trials",
            "--storage",
            url,
            "--study",
            "e2e",
            "--format",
            "csv",
            "--out",
            str(csv),
        ],
        check=True,
    )
    assert csv.read_text().startswith("number,state")
    missing = subprocess.run(
        [sys.executable, "-m", "autostudent", "status", "--storage", url, "--study", "nope"],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: --study: no study 'nope'")
    assert len(missing.stderr.strip().splitlines()) == 1
