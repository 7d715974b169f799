"""A throwaway PostgreSQL server for the tests: a cluster made by ``initdb`` in a temporary
folder, started by ``pg_ctl`` on a free port of 127.0.0.1 with its unix socket in that folder,
trust authentication and a database ``test``; stopped and deleted at the end of the session.

The tests never use a server that happens to run on the machine (a user's fresh machine has
none, and CI must not write into one). The binaries come from Debian's ``postgresql`` package
(``.ci/setup`` installs it): the newest ``/usr/lib/postgresql/<version>/bin``, or the folder
named by ``AUTOSTUDENT_PG_BINDIR``, or ``initdb`` on the PATH.

PostgreSQL refuses to run as root: as root, the server's commands run as the ``postgres``
system user (Debian's package creates it) through ``runuser``, and the folder is handed to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SETUP_HINT = "run .ci/setup (it installs Debian's postgresql package)"


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    named = os.environ.get("AUTOSTUDENT_PG_BINDIR")
    if named:
        return Path(named)
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()]
    if debian:
        return max(debian, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    """``start()`` → a running server; ``url`` reaches its database ``test``; ``stop()``."""

    user = "postgres"  # the database superuser (trust auth: any password is accepted)

    def __init__(self, bindir: Path | None = None) -> None:
        bindir = bindir or find_bindir()
        missing = [
            name for name in ("initdb", "pg_ctl") if bindir is None or not (bindir / name).is_file()
        ]
        if missing:
            where = bindir or "/usr/lib/postgresql/*/bin, AUTOSTUDENT_PG_BINDIR or the PATH"
            raise RuntimeError(
                f"the tests start their own PostgreSQL server, but {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not in {where}: {SETUP_HINT}"
            )
        self.bindir = bindir
        self.port = 0
        self.folder: Path | None = None
        self._as: list[str] = []

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/test"

    def _run(self, *args: str) -> None:
        try:
            done = subprocess.run(
                [*self._as, *args], capture_output=True, text=True, timeout=120, check=False
            )
        except FileNotFoundError as exc:  # e.g. no runuser on this machine
            raise RuntimeError(f"cannot run {exc.filename}: {SETUP_HINT}") from None
        if done.returncode != 0:
            log = self.folder / "server.log" if self.folder else None
            tail = log.read_text()[-2000:] if log and log.is_file() else ""
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}\n{tail}"
            )

    def start(self) -> ThrowawayPostgres:
        # mkdtemp in /tmp, not under pytest's (root-only) basetemp: the server's user must reach it
        self.folder = Path(tempfile.mkdtemp(prefix="autostudent-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "the tests run as root and PostgreSQL refuses root: no 'postgres' user to "
                    f"run it as; {SETUP_HINT}, or run the tests as a normal user"
                ) from None
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        data = self.folder / "data"
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        # a free port can be taken between the check and the bind: try a few
        for attempt in range(5):
            self.port = _free_port()
            options = " ".join(
                [
                    f"-p {self.port}",
                    "-h 127.0.0.1",
                    f"-k {self.folder}",  # the unix socket too stays in the throwaway folder
                    # a test database: durability buys nothing, and fsyncs are slow here
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=200",
                ]
            )
            try:
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(data),
                    "-l",
                    str(self.folder / "server.log"),
                    "-o",
                    options,
                )
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        self._run(
            str(self.bindir / "createdb"),
            "-h",
            str(self.folder),
            "-p",
            str(self.port),
            "-U",
            self.user,
            "test",
        )
        return self

    def stop(self) -> None:
        if self.folder is None:
            return
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(
                str(self.bindir / "pg_ctl"), "stop", "-D", str(self.folder / "data"), "-m", "fast"
            )
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None
