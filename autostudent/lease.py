"""One driver per study: a lease row in the study database, renewed by a heartbeat thread.

Optuna's own heartbeats (``RDBStorage(heartbeat_interval=…)``) only run inside
``study.optimize``; autostudent asks and tells through Ray Tune, so the driver keeps its own lease:
a row ``autostudent_drivers(study, token, host, pid, started, heartbeat, …)`` beside Optuna's
tables, its heartbeat renewed every ``interval`` seconds. The trials a driver runs are its own:
they live as long as its lease does.

A second driver refuses to start while the lease is live. A lease is dead when it was released,
when its heartbeat is older than ``grace`` seconds (the driver's host died or lost the database),
or when its driver ran on this host and its process is gone (a SIGKILLed driver is taken over at
once). Taking over is a compare-and-swap on the old token, so two drivers starting together
cannot both win; the winner then recovers the dead driver's RUNNING trials.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone

import optuna
import sqlalchemy as sa

from autostudent import storage
from autostudent.errors import UserError
from autostudent.processes import pid_alive

log = logging.getLogger(__name__)

INTERVAL_S = 5.0  # heartbeat period


def grace_seconds() -> float:
    """Seconds without a heartbeat after which a driver counts as dead
    ($AUTOSTUDENT_DRIVER_GRACE, default 30: six missed heartbeats; raise it for clock skew)."""
    return float(os.environ.get("AUTOSTUDENT_DRIVER_GRACE", "30"))


_metadata = sa.MetaData()
DRIVERS = sa.Table(
    "autostudent_drivers",
    _metadata,
    sa.Column("study", sa.String(512), primary_key=True),
    sa.Column("token", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),
    sa.Column("released", sa.Boolean, nullable=False, default=False),
    # connection retries of every driver of this study so far (status shows them)
    sa.Column("storage_retries", sa.Integer, nullable=False, default=0),
)


class LeaseHeld(UserError):
    """Another driver is live on the study: exit 2, one line naming it."""


class LeaseLost(Exception):
    """This driver's lease was taken over (it missed heartbeats for longer than the grace)."""


def is_alive(row: sa.Row, now: float, grace: float | None = None) -> bool:
    grace = grace_seconds() if grace is None else grace
    if row.released or now - row.heartbeat > grace:
        return False
    return row.host != socket.gethostname() or pid_alive(row.pid)


class Lease:
    """The lease of one driver on one study; ``acquire`` it, then ``start`` the heartbeat."""

    def __init__(
        self, store: optuna.storages.RDBStorage, study: str, *, interval: float, grace: float
    ):
        self.store = store
        self.engine = store.engine
        self.study = study
        self.interval = interval
        self.grace = grace
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.previous: dict | None = None  # the dead driver taken over, if any
        self.lost = False
        self._retries_before = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def acquire(
        cls,
        store: optuna.storages.RDBStorage,
        study: str,
        *,
        interval: float = INTERVAL_S,
        grace: float | None = None,
    ) -> Lease:
        grace = grace_seconds() if grace is None else grace
        lease = cls(store, study, interval=interval, grace=grace)
        _create_table(lease.engine)
        lease._take()
        return lease

    def _take(self) -> None:
        now = time.time()
        mine = {
            "token": self.token,
            "host": self.host,
            "pid": self.pid,
            "started": now,
            "heartbeat": now,
            "released": False,
        }
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(DRIVERS).where(DRIVERS.c.study == self.study)).first()
        if row is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        DRIVERS.insert().values(study=self.study, storage_retries=0, **mine)
                    )
                return
            except sa.exc.IntegrityError:  # another driver inserted first: it holds the lease
                pass
        elif not is_alive(row, now, self.grace):
            with self.engine.begin() as conn:  # compare-and-swap on the dead driver's token
                swapped = conn.execute(
                    DRIVERS.update()
                    .where(DRIVERS.c.study == self.study, DRIVERS.c.token == row.token)
                    .values(**mine)
                )
            if swapped.rowcount == 1:
                self._retries_before = row.storage_retries
                if not row.released:
                    self.previous = {"host": row.host, "pid": row.pid}
                return
        holder = driver_info(self.store, self.study, self.grace) or {}
        raise LeaseHeld(
            f"study {self.study!r} is being run by a live driver on {holder.get('host', '?')} "
            f"(pid {holder.get('pid', '?')}, last heartbeat {holder.get('seconds_ago', 0):.0f} s "
            f"ago): one driver per study; it counts as dead {self.grace:.0f} s after its last "
            "heartbeat"
        )

    def start(self) -> Lease:
        self._thread = threading.Thread(target=self._beat, name="autostudent-lease", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew()
            except Exception as exc:  # the database is away: try again at the next beat
                log.warning("lease heartbeat failed: %s", storage.redact(str(exc)).splitlines()[0])
            if self.lost:
                return

    def renew(self) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                DRIVERS.update()
                .where(DRIVERS.c.study == self.study, DRIVERS.c.token == self.token)
                .values(
                    heartbeat=time.time(),
                    storage_retries=self._retries_before + storage.retries(),
                )
            )
        if done.rowcount != 1:
            self.lost = True

    def check(self) -> None:
        """Raise ``LeaseLost`` when another driver has taken the study over."""
        error = self.lost_error()
        if error is not None:
            raise error

    def lost_error(self) -> LeaseLost | None:
        if self.lost:
            try:
                holder = driver_info(self.store, self.study, self.grace) or {}
            except Exception:  # the database is away too: say what is known
                holder = {}
            return LeaseLost(
                f"study {self.study!r} was taken over by the driver on {holder.get('host')} "
                f"(pid {holder.get('pid')}) after this one missed its heartbeats; this driver "
                "stopped without writing more"
            )
        return None

    def release(self) -> None:
        """Stop the heartbeat and mark the lease released (a final renew stores the retries)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        if self.lost:
            return
        try:
            self.renew()
            with self.engine.begin() as conn:
                conn.execute(
                    DRIVERS.update()
                    .where(DRIVERS.c.study == self.study, DRIVERS.c.token == self.token)
                    .values(released=True)
                )
        except Exception as exc:  # the database is gone: the lease goes stale instead
            log.warning("lease release failed: %s", storage.redact(str(exc)).splitlines()[0])

    def __enter__(self) -> Lease:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.release()


def _create_table(engine: sa.Engine) -> None:
    try:
        _metadata.create_all(engine, checkfirst=True)
    except sa.exc.SQLAlchemyError:  # created by a driver starting at the same moment
        if not sa.inspect(engine).has_table(DRIVERS.name):
            raise


def driver_info(
    store: optuna.storages.BaseStorage, study: str, grace: float | None = None
) -> dict | None:
    """The study's last driver: host, pid, last heartbeat, alive; None when it never had one."""
    engine = storage.engine_of(store)
    if engine is None or not sa.inspect(engine).has_table(DRIVERS.name):
        return None
    with engine.connect() as conn:
        row = conn.execute(sa.select(DRIVERS).where(DRIVERS.c.study == study)).first()
    if row is None:
        return None
    now = time.time()
    return {
        "host": row.host,
        "pid": row.pid,
        "started": _iso(row.started),
        "heartbeat": _iso(row.heartbeat),
        "seconds_ago": round(now - row.heartbeat, 1),
        "alive": is_alive(row, now, grace),
        "released": bool(row.released),
        "storage_retries": row.storage_retries,
    }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")
