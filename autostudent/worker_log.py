"""The search's worker log: everything its Ray workers print (stdout and stderr, a failed
trial's whole traceback, Ray's own warnings), on every node of the cluster, in one file per
study beside the study database; the study stores where it is (``status`` shows it).

Ray forwards each worker's output to the driver (``log_to_driver``); ``init_ray`` takes Ray's
terminal printer off that stream (it would break the progress display) and ``WorkerLog`` writes
the stream to the file while a search runs.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import IO, Any

ATTR = "worker_log"  # the study attribute: relative to a SQLite file's folder, else absolute
_HANDLER = "autostudent_worker_log"
_RAY_PRINTER = "ray_print_logs"  # Ray's handler that prints worker output on the terminal
_EVENT = ":event_summary:"  # marks an autoscaler line that is an event (Ray's own filter)


def _sqlite_file(storage_url: str) -> Path | None:
    """The database file of a SQLite URL (None for another database or an in-memory one)."""
    if not storage_url.startswith("sqlite:///"):
        return None
    name = storage_url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def log_path(storage_url: str, study: str, cache_dir: Path) -> Path:
    """Where study ``study``'s worker log goes: beside its SQLite file (``fm.db`` →
    ``fm.workers.log``, or ``fm.<study>.workers.log`` for another study in the same file), or
    in the cache folder for a database server."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", study)
    db = _sqlite_file(storage_url)
    if db is None:
        return Path(cache_dir) / "logs" / f"{safe}.workers.log"
    stem = db.stem if db.stem == safe else f"{db.stem}.{safe}"
    return db.with_name(f"{stem}.workers.log")


def record(study: Any, storage_url: str, cache_dir: Path) -> Path:
    """Store the log's place in ``study`` (a SQLite study keeps it relative to its file, so a
    folder moved elsewhere still finds it) and return the path to write to."""
    path = log_path(storage_url, study.study_name, cache_dir)
    db = _sqlite_file(storage_url)
    study.set_user_attr(ATTR, path.name if db is not None else str(path.resolve()))
    return path


def shown(study: Any) -> str | None:
    """The worker log's path as this machine reaches it (None before a search ran)."""
    stored = study.user_attrs.get(ATTR)
    if not stored or Path(stored).is_absolute():
        return stored or None
    engine = getattr(getattr(study._storage, "_backend", study._storage), "engine", None)
    db = _sqlite_file(str(engine.url)) if engine is not None else None
    return str((db.resolve().parent if db else Path.cwd()) / stored)


def take_over_ray_printer() -> None:
    """Worker output no longer goes to this process's terminal (a ``WorkerLog`` takes it)."""
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher
    except ImportError:  # another Ray: its printer stays, nothing is lost
        return
    global_worker_stdstream_dispatcher.remove_handler(_RAY_PRINTER)


class WorkerLog:
    """While open, every line Ray's workers print is appended to ``path`` as
    ``HH:MM:SS (task pid=…, ip=…) line`` (``!`` after the time marks stderr)."""

    def __init__(self, path: Path, study: str) -> None:
        self.path = Path(path)
        self.study = study
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self._last = 0.0

    def __enter__(self) -> WorkerLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8", errors="replace")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self._file.write(
            f"=== search of study {self.study!r} started {stamp} on {socket.gethostname()}, "
            f"driver pid {os.getpid()} ===\n"
        )
        dispatcher = _dispatcher()
        if dispatcher is None or not _forwarding():
            self._file.write(
                "(Ray does not forward its workers' output to this driver (log_to_driver "
                "off): it is in Ray's own session logs, /tmp/ray/session_latest/logs on each "
                "node)\n"
            )
        else:
            dispatcher.add_handler(_HANDLER, self.write)
        self._file.flush()
        return self

    def write(self, batch: dict) -> None:
        """One batch of lines of one worker, as Ray's log monitor publishes it."""
        lines = batch.get("lines") or []
        if batch.get("pid") == "autoscaler":  # its status table every 5 s: only its events
            lines = [line.split(_EVENT, 1)[1] for line in lines if _EVENT in line]
        name = batch.get("actor_name") or batch.get("task_name") or "worker"
        where = f"({name} pid={batch.get('pid')}, ip={batch.get('ip')})"
        mark = "!" if batch.get("is_err") else " "
        with self._lock:
            if self._file is None:
                return
            now = time.strftime("%H:%M:%S")
            for line in lines:
                self._file.write(f"{now}{mark}{where} {line}\n")
            self._file.flush()
            self._last = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        # Ray's log monitor polls the workers' files every 0.1 s: let the last lines arrive
        # (0.5 s without a line, at most 2 s)
        start = time.monotonic()
        while time.monotonic() - start < 2.0 and time.monotonic() - max(start, self._last) < 0.5:
            time.sleep(0.1)
        dispatcher = _dispatcher()
        if dispatcher is not None:
            dispatcher.remove_handler(_HANDLER)
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _dispatcher() -> Any:
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher
    except ImportError:
        return None
    return global_worker_stdstream_dispatcher


def _forwarding() -> bool:
    """Whether this Ray driver receives its workers' output (``ray.init(log_to_driver=True)``)."""
    import ray._private.worker as ray_worker

    thread = getattr(ray_worker.global_worker, "logger_thread", None)
    return thread is not None and thread.is_alive()
