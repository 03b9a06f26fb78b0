"""A PostgreSQL primary and its streaming replica, made for a test run in a temporary folder and removed after.

Why a pair of its own rather than a replica of the server at TEST_DATABASE_URL: that server holds every
engineer's test databases (``pg_basebackup`` copies a whole cluster), its ``pg_hba.conf`` may refuse
replication connections (Debian's does: ``all`` in the database column does not match ``replication``), and
a test must not change a machine's server. ``initdb --auth=trust`` writes a ``pg_hba.conf`` that allows
replication from 127.0.0.1, ``wal_level`` is ``replica`` by default, so the pair needs nothing of the machine
but PostgreSQL's programs (Debian's postgresql package: /usr/lib/postgresql/<version>/bin). The replica is
made as production makes one: ``pg_basebackup -R`` (``standby.signal`` and ``primary_conninfo`` written by it).

PostgreSQL refuses to run as root: as root the programs run as the ``postgres`` user, in a folder it owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.helpers import missing_tool, wait_until


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (the newest version installed), or a skip (a failure in CI)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb") and shutil.which("pg_basebackup"):
        return Path(found).parent
    missing_tool(
        "PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) are not installed (apt-get install postgresql)"
    )


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ReplicaPair:
    """A primary and its hot standby on two ports of 127.0.0.1, trust authentication as ``postgres``."""

    folder: Path
    bin: Path
    primary_port: int
    replica_port: int
    run_as: str | None  # the user the server programs run as (None: this process's)

    def url(self, port: int, database: str = "postgres") -> str:
        """A SQLAlchemy URL of ``database`` on the server at ``port``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}"

    def run(self, program: str, *args: str) -> str:
        """Run one of PostgreSQL's programs; fail with its output when it fails."""
        result = subprocess.run(
            [str(self.bin / program), *args],
            user=self.run_as,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def sql(self, port: int, statement: str, database: str = "postgres", params: tuple = ()):
        """Run one statement in autocommit on the server at ``port``; its first row, if any."""
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname=database, autocommit=True, connect_timeout=5
        ) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchone() if cursor.description else None

    def start_replica(self) -> None:
        """Start the replica (again) and wait until it accepts connections."""
        self.run("pg_ctl", "-D", str(self.folder / "replica"), "-l", str(self.folder / "replica.log"), "-w", "start")

    def stop_replica(self) -> None:
        """Stop the replica (an outage)."""
        self.run("pg_ctl", "-D", str(self.folder / "replica"), "-m", "fast", "-w", "stop")

    def pause_replay(self) -> None:
        """The replica stops applying what it receives (``pg_wal_replay_pause``): it lags from now on."""
        self.sql(self.replica_port, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        """The replica applies what it received again."""
        self.sql(self.replica_port, "SELECT pg_wal_replay_resume()")

    def primary_lsn(self) -> str:
        """The primary's current WAL position."""
        return self.sql(self.primary_port, "SELECT pg_current_wal_insert_lsn()::text")[0]

    def wait_until_replayed(self) -> None:
        """Wait until the replica has applied everything the primary had written when this was called."""
        lsn = self.primary_lsn()
        wait_until(
            lambda: self.sql(self.replica_port, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", params=(lsn,))[0],
            f"the replica to replay up to {lsn}",
        )

    def wait_until_received(self) -> None:
        """Wait until the replica has received (not necessarily applied) everything the primary wrote so far."""
        lsn = self.primary_lsn()
        wait_until(
            lambda: self.sql(self.replica_port, "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", params=(lsn,))[0],
            f"the replica to receive up to {lsn}",
        )

    def stop(self) -> None:
        """Stop both servers and remove their folder."""
        for name in ("replica", "primary"):
            if (self.folder / name / "postmaster.pid").exists():
                subprocess.run(
                    [str(self.bin / "pg_ctl"), "-D", str(self.folder / name), "-m", "immediate", "-w", "stop"],
                    user=self.run_as,
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
        shutil.rmtree(self.folder, ignore_errors=True)


SERVER_SETTINGS = (
    "listen_addresses = '127.0.0.1'\n"
    "unix_socket_directories = ''\n"
    "fsync = off\n"  # a throwaway cluster: speed over durability
    "full_page_writes = off\n"
    "max_connections = 40\n"
    "shared_buffers = 16MB\n"
    "max_wal_senders = 4\n"
    "hot_standby = on\n"
)


def start_pair() -> ReplicaPair:
    """initdb a primary, start it, ``pg_basebackup -R`` a replica from it, start that; both on free ports."""
    bin_dir = postgres_bin()
    run_as = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="msl-replica-"))
    if run_as:
        account = pwd.getpwnam(run_as)
        os.chown(folder, account.pw_uid, account.pw_gid)
    pair = ReplicaPair(folder, bin_dir, free_port(), free_port(), run_as)
    try:
        primary = folder / "primary"
        pair.run(
            "initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"
        )
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(SERVER_SETTINGS + f"port = {pair.primary_port}\n")
        pair.run("pg_ctl", "-D", str(primary), "-l", str(folder / "primary.log"), "-w", "start")
        replica = folder / "replica"
        pair.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(pair.primary_port), "-U", "postgres",
            "-D", str(replica), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        with (replica / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {pair.replica_port}\n")
        pair.start_replica()
    except BaseException:
        pair.stop()
        raise
    return pair
