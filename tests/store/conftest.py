"""Store fixtures: a throwaway PostgreSQL cluster (session) and one fresh store per backend."""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need, need_binary

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL 15 in a temp dir (as the `postgres` user when we are root)."""
    initdb = need_binary(str(PG_BIN / "initdb"), "initdb")
    pg_ctl = need_binary(str(PG_BIN / "pg_ctl"), "pg_ctl")
    prefix: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="gemini-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            need(False, "running as root and there is no `postgres` user to run PostgreSQL as")
            raise
        os.chown(tmp, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = tmp / "data", _free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "gemini", "-N"], **run)  # type: ignore[call-overload]
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "start"], **run
    )  # type: ignore[call-overload]
    try:
        yield f"postgresql+psycopg://gemini@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(tmp, ignore_errors=True)


_dbs = itertools.count()


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new empty schema on the session's server (cheaper than a database per test)."""
    import psycopg

    name = f"t{os.getpid()}_{next(_dbs)}"
    with psycopg.connect(
        f"{postgres_server.replace('+psycopg', '')}/postgres", autocommit=True
    ) as c:
        c.execute(f'CREATE SCHEMA "{name}"')
    return f"{postgres_server}/postgres?options=-csearch_path%3D{name}"


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'decisions.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))
