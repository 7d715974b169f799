"""The worker log's place beside the study and what it writes (a real search writing it, with
a failed trial's traceback, is in test_search.py)."""

from __future__ import annotations

import optuna

from autostudent import study as studydb
from autostudent import worker_log
from autostudent.worker_log import WorkerLog, log_path


def test_the_log_sits_beside_a_sqlite_study_or_in_the_cache(tmp_path):
    cache = tmp_path / "cache"
    db = tmp_path / "runs" / "fm.db"
    assert log_path(f"sqlite:///{db}", "fm", cache) == tmp_path / "runs" / "fm.workers.log"
    # another study in the same file, a name that is no file name
    assert log_path(f"sqlite:///{db}", "b/2 x", cache) == db.with_name("fm.b_2_x.workers.log")
    server = "postgresql://u@db.example:5432/studies"
    assert log_path(server, "fm", cache) == cache / "logs" / "fm.workers.log"
    assert log_path("sqlite://", "fm", cache) == cache / "logs" / "fm.workers.log"  # in memory


def test_status_finds_a_sqlite_study_log_after_the_folder_moved(tmp_path):
    first = tmp_path / "here"
    first.mkdir()
    url = f"sqlite:///{first / 's.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    assert studydb.summary(study)["worker_log"] is None  # no search ran yet
    written = worker_log.record(study, url, tmp_path / "cache")
    assert written == first / "s.workers.log"
    assert study.user_attrs["worker_log"] == "s.workers.log"  # relative to the study file
    moved = tmp_path / "moved"
    first.rename(moved)
    again = studydb.load(f"sqlite:///{moved / 's.db'}", "s")
    assert studydb.summary(again)["worker_log"] == str(moved / "s.workers.log")


def test_lines_are_written_with_their_worker_and_stream(tmp_path):
    path = tmp_path / "logs" / "s.workers.log"
    with WorkerLog(path, "s") as log:
        batch = {"ip": "10.0.0.2", "pid": 41, "task_name": "train_candidate", "is_err": True}
        log.write({**batch, "lines": ["Traceback (most recent call last):", "ValueError: x"]})
        log.write({"ip": "10.0.0.2", "pid": 42, "is_err": False, "lines": ["hello"]})
        log.write(
            {
                "ip": "10.0.0.2",
                "pid": "autoscaler",
                "lines": ["Node status", ":event_summary:Adding 1 node(s)"],
            }
        )
    log.write({**batch, "lines": ["after the search"]})  # closed: dropped, no error
    lines = path.read_text().splitlines()
    assert lines[0].startswith("=== search of study 's' started ")
    body = [line[8:] for line in lines if not line.startswith(("===", "("))]  # without HH:MM:SS
    assert body == [
        "!(train_candidate pid=41, ip=10.0.0.2) Traceback (most recent call last):",
        "!(train_candidate pid=41, ip=10.0.0.2) ValueError: x",
        " (worker pid=42, ip=10.0.0.2) hello",
        " (worker pid=autoscaler, ip=10.0.0.2) Adding 1 node(s)",
    ]
    # a second search appends: the first one's lines stay
    with WorkerLog(path, "s"):
        pass
    assert path.read_text().count("=== search of study 's'") == 2
    assert path.read_text().startswith("\n".join(lines))
