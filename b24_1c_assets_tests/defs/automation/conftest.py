"""A throwaway PostgreSQL cluster for the instance-storage test: initdb in a temp dir, a free loopback port,
password auth over TCP, one database; stopped and removed afterwards."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def postgres_bin() -> Path | None:
    """The directory with initdb/pg_ctl: PG_BIN, Debian's /usr/lib/postgresql/<v>/bin (newest), or PATH."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    which = shutil.which("initdb")
    candidates.append(str(Path(which).parent) if which else "")
    for candidate in filter(None, candidates):
        if all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def postgres_db():
    """Connection settings of a fresh database on a private PostgreSQL server (skip when no server binaries)."""
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: apt-get install postgresql or set PG_BIN"
        )
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="b24-1c-pg-"))  # not under pytest's tmp: its parents are root-only
    if os.geteuid() == 0:  # the server refuses to run as root: run it as the postgres account
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server as")
        os.chown(root, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_hex(12)
    pwfile = root / "pw"
    pwfile.write_text(password)
    if prefix:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    data, port = root / "data", free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    run(
        str(binaries / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-sync",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        f"--pwfile={pwfile}",
    )
    pwfile.unlink()
    run(
        str(binaries / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "server.log"),
        "-w",
        "-t",
        "60",
        "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
        "start",
    )
    try:
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", password=password, dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE dagster")
        admin.close()
        yield {
            "hostname": "127.0.0.1",
            "port": port,
            "username": "postgres",
            "password": password,
            "db_name": "dagster",
        }
    finally:
        subprocess.run(
            [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)
