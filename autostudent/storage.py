"""Opening the study database: one place for the whole project.

It parses the SQLAlchemy URL, keeps the URL's password out of everything a user or another
process can read (messages, logs, status, dashboards, the config stored in the study), sets the
engine's options, and — once the database has answered — rides out a lost connection by
reconnecting with backoff, counting every retry so that ``status`` can show it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import optuna
from sqlalchemy.engine import URL, make_url

from autostudent import killpoints
from autostudent.errors import UserError

log = logging.getLogger(__name__)

MASK = "***"
# Query parameters libpq and its drivers accept as a password.
_SECRET_KEYS = ("password", "passwd", "sslpassword")
# user:password@ in anything URL-shaped, for text that was never parsed (a malformed URL).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]+)(@)")

_secrets: set[str] = set()
# this process's connection retries on every engine, and whether it gave a database up
_state: dict[str, int | str] = {"retries": 0, "gave_up": ""}


def parse(url: str) -> URL:
    """The URL as SQLAlchemy reads it; its password (if any) is remembered for ``redact``."""
    if "://" not in url:
        raise UserError(
            f"--storage: {redact(url)!r} is not a database URL (e.g. sqlite:///study.db)"
        )
    try:
        parsed = make_url(url)
    except Exception:
        raise UserError(f"--storage: {redact(url)!r} is not a database URL") from None
    for secret in _passwords(parsed):
        _remember(secret)
    return parsed


def _passwords(url: URL) -> list[str]:
    found = [url.password] if url.password else []
    for key in _SECRET_KEYS:
        value = url.query.get(key)
        found += [value] if isinstance(value, str) else list(value or ())
    return [str(p) for p in found if p]


def _remember(secret: str) -> None:
    # The text may hold the password as typed (percent-encoded) or decoded: mask every form.
    _secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})


def redact(text: str) -> str:
    """``text`` with every known storage password replaced by ``***``."""
    text = _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def safe_url(url: str) -> str:
    """The URL for messages and logs: the password shown as ``***``."""
    try:
        parsed = parse(url)
    except UserError:
        return redact(url)
    query = {k: (MASK if k in _SECRET_KEYS else v) for k, v in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True)


def public_url(url: str) -> str:
    """The URL to store (in the study's config): the password removed, user@host/db kept."""
    parsed = parse(url)
    query = {k: v for k, v in parsed.query.items() if k not in _SECRET_KEYS}
    kept = URL.create(
        parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database, query
    )
    return kept.render_as_string(hide_password=False)


def require_existing(url: str) -> None:
    """A study is read from ``url``: a SQLite file that is not there is a one-line UserError,
    not an empty database created by opening it (only ``search`` creates one)."""
    parsed = parse(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    if parsed.database.startswith("file:") or Path(parsed.database).exists():
        return
    raise UserError(
        f"--storage: no database file {parsed.database} ({safe_url(url)}): a search creates it"
    )


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Open (and create the tables of) an RDB storage; a bad URL or an unreachable server is a
    one-line UserError at once. A connection lost later is retried (see ``Reconnect``)."""
    parsed = parse(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        # Only the driver writes, but status/dashboard may read while it does: wait, don't fail.
        kwargs = {"connect_args": {"timeout": 60}}
    elif parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10}
    cls = optuna.storages.RDBStorage if parsed.get_backend_name() == "sqlite" else RetryingStorage
    try:
        store = cls(url, engine_kwargs=kwargs)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--storage: cannot open {safe_url(url)}: {redact(reason)}") from None
    if parsed.get_backend_name() != "sqlite":
        Reconnect(safe_url(url)).attach(store)
    if killpoints.armed():
        from sqlalchemy import event

        event.listen(store.engine, "commit", lambda _conn: killpoints.reached("db_commit"))
    return store


class StorageLost(Exception):
    """The database stopped answering for longer than the retry budget allows."""


def patience_seconds() -> float:
    """How long a lost database is waited for ($AUTOSTUDENT_STORAGE_PATIENCE, default 120 s)."""
    return float(os.environ.get("AUTOSTUDENT_STORAGE_PATIENCE", "120"))


class Reconnect:
    """A database connection lost after the storage opened is retried with exponential backoff
    (0.5 s doubling to 8 s) for up to ``patience_seconds()``; then ``StorageLost``.

    Hooked into the engine's ``do_connect``: SQLAlchemy's ``pool_pre_ping`` drops dead pooled
    connections, so every statement after an outage goes through here.
    """

    def __init__(self, shown_url: str) -> None:
        self.shown_url = shown_url
        self.retries = 0

    def attach(self, store: optuna.storages.RDBStorage) -> None:
        from sqlalchemy import event

        event.listen(store.engine, "do_connect", self._connect)

    def _connect(self, dialect, conn_rec, cargs, cparams):
        errors = dialect.loaded_dbapi.OperationalError
        deadline = time.monotonic() + (0 if gave_up() else patience_seconds())
        delay = 0.5
        while True:
            try:
                return dialect.connect(*cargs, **cparams)
            except errors as exc:
                if time.monotonic() + delay > deadline:
                    last = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    # later connects fail at once: the driver is stopping
                    _state["gave_up"] = (
                        f"the study database {self.shown_url} stopped answering "
                        f"({retries()} retries over {patience_seconds():.0f} s; last: "
                        f"{redact(last)}); the study is consistent, run the same command again "
                        "when the database is back"
                    )
                    raise StorageLost(_state["gave_up"]) from None
                self.retries += 1
                _state["retries"] += 1
                log.info("study database unreachable, retry %d in %.1f s", self.retries, delay)
                time.sleep(delay)
                delay = min(delay * 2, 8.0)


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a lost connection rather than a bad statement."""
    from sqlalchemy import exc as sa_exc

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, sa_exc.DBAPIError) and (
            exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError)
        ):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class RetryingStorage(optuna.storages.RDBStorage):
    """An RDB storage whose every call is retried with backoff when the connection drops
    mid-statement (each call is one transaction: a call that failed did not commit).
    Connections refused meanwhile wait in ``Reconnect``."""


_local = threading.local()


def retrying(method):
    """``method`` retried with backoff (0.5 s doubling to 8 s, for ``patience_seconds()``) when
    the connection drops under it; one transaction per call, so a failed call did not commit."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if getattr(_local, "inside", False):  # a storage call made by a storage call
            return method(self, *args, **kwargs)
        deadline = time.monotonic() + patience_seconds()
        delay = 0.5
        while True:
            _local.inside = True
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                if gave_up() or not _connection_lost(exc) or time.monotonic() > deadline:
                    raise
                _state["retries"] += 1
                log.info("study database lost in %s, retry in %.1f s", method.__name__, delay)
            finally:
                _local.inside = False
            time.sleep(delay)
            delay = min(delay * 2, 8.0)

    return call


# Every call Optuna (and its cache in front of the storage) makes on an RDB storage.
_CALLS = """create_new_study delete_study set_study_user_attr set_study_system_attr
get_study_id_from_name get_study_name_from_id get_study_directions get_study_user_attrs
get_study_system_attrs get_all_studies create_new_trial _create_new_trial set_trial_param
_set_trial_param get_trial_param get_trial_id_from_study_id_trial_number _get_best_trial_id
set_trial_state_values set_trial_intermediate_value set_trial_user_attr set_trial_system_attr
get_trial get_all_trials _get_trials get_best_trial get_trial_user_attrs get_trial_system_attrs"""
for _name in _CALLS.split():
    setattr(RetryingStorage, _name, retrying(getattr(optuna.storages.RDBStorage, _name)))


def gave_up() -> bool:
    """True once a lost database outlasted ``patience_seconds()`` in this process."""
    return bool(_state["gave_up"])


def lost() -> StorageLost | None:
    """The error that ends the search once the database was given up, else None."""
    return StorageLost(str(_state["gave_up"])) if _state["gave_up"] else None


def engine_of(store: optuna.storages.BaseStorage):
    """The SQLAlchemy engine under an RDB storage (``study._storage`` wraps it in a cache)."""
    return getattr(getattr(store, "_backend", store), "engine", None)


def retries() -> int:
    """Connection retries this process made on every database it opened (0 for SQLite)."""
    return int(_state["retries"])


class _RedactingRecords:
    """Every log record's message is redacted before any handler sees it."""

    def __init__(self, factory) -> None:
        self.factory = factory

    def __call__(self, *args, **kwargs) -> logging.LogRecord:
        record = self.factory(*args, **kwargs)
        if _secrets:
            # a malformed log call stays the logging module's business
            with contextlib.suppress(Exception):
                record.msg, record.args = redact(record.getMessage()), ()
        return record


if not isinstance(logging.getLogRecordFactory(), _RedactingRecords):
    logging.setLogRecordFactory(_RedactingRecords(logging.getLogRecordFactory()))
