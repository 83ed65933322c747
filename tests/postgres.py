"""A throwaway PostgreSQL server on loopback for the tests: initdb into a temporary folder,
pg_ctl start on a free port, one database per test. Used when FEEDBACK_TEST_POSTGRES (a
server's URL) is not given, so that `pytest` alone runs the PostgreSQL half of the suite.

initdb and postgres refuse to run as root; as root (CI), they run as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

USER = "feedback"


def binaries() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (Debian's layout first)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version, reverse=True)
    if found:
        return Path(found[0]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _version(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except ValueError:
        return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str  # the maintenance database, as the superuser `feedback`
    folder: Path | None = None
    _bin: Path | None = None
    _as: list[str] | None = None

    def stop(self) -> None:
        if self.folder is None or self._bin is None:
            return
        subprocess.run(
            [
                *(self._as or []),
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    def cpu_seconds(self) -> float:
        """CPU the server has used so far: the postmaster and its live children, and the
        children that have exited (the benchmark counts the database's share of a vote)."""
        if self.folder is None:
            return 0.0
        postmaster = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(stat.split("/")[2]), int(fields[1])
            if pid == postmaster:
                total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            elif ppid == postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{name}"


def start() -> Server:
    """Start a server; raises RuntimeError saying what is missing."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL's server is not installed (no pg_ctl): apt-get install postgresql,"
            " or set FEEDBACK_TEST_POSTGRES to a server's URL"
        )
    folder = Path(tempfile.mkdtemp(prefix="feedback-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-instructions",
        ],
        check=True,
        capture_output=True,
    )
    # For speed the suite's server does not make commits durable (fsync, synchronous_commit
    # and full-page writes off): a test's database dies with the test, and no test kills the
    # server's host. What a crash of the *bot* may lose does not depend on these settings.
    # FEEDBACK_TEST_POSTGRES_DURABLE=1 runs with PostgreSQL's durable defaults instead, e.g.
    # `FEEDBACK_TEST_POSTGRES_DURABLE=1 pytest tests/test_replicas.py`.
    durability = (
        ""
        if os.environ.get("FEEDBACK_TEST_POSTGRES_DURABLE") == "1"
        else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    # The suite's workers (pytest -n) each start a server: a port another took between
    # _free_port() and the start is tried again with another.
    for attempt in range(3):
        port = _free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}{durability}"
            " -c max_connections=200"
        )
        started = subprocess.run(
            [
                *run_as,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "log"),
                "-o",
                options,
                "-w",
                "start",
            ],
            capture_output=True,
        )
        if started.returncode == 0:
            break
        if attempt == 2:
            started.check_returncode()
    return Server(f"postgresql://{USER}@127.0.0.1:{port}/postgres", folder, bin_dir, run_as)


def new_database_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


TEMPLATE = "feedback_template"


async def prepare_template(server: Server) -> None:
    """A database migrated to the current schema, which each test's database copies."""
    import asyncpg

    from storage.postgres.db import connect

    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        await admin.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await admin.close()
    pool, _ = await connect(server.database_url(TEMPLATE))
    await pool.close()


async def new_database(server: Server) -> str:
    import asyncpg

    name = new_database_name()
    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    return server.database_url(name)
