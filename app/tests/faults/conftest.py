"""Fixtures of the fault tests: a throwaway PostgreSQL cluster, real server processes, and a
moto S3 server on a fixed port. Everything started here is stopped in a finalizer."""

from __future__ import annotations

import logging
import os
import pwd
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.config import Config
from moto.server import ThreadedMotoServer

from alembic import command
from app.tests.conftest import ROOT, _clear_tables
from app.tests.faults.harness import FaultDatabase, Servers
from app.tests.faults.postgres import ThrowawayPostgres, postgres_bin_dir
from app.tests.fixtures.s3 import start_moto_server
from app.tests.server_process import free_port

# One line per request from the posters would bury the summaries printed under `-s`.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("werkzeug").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0 and not _user_exists("postgres"):
        pytest.skip("running as root, and there is no postgres user to run initdb as")
    cluster = ThrowawayPostgres(bin_dir)
    try:
        cluster.init()
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["database_url"] = cluster.url
        config.attributes["configure_logging"] = False
        # Alembic's env.py runs its own event loop: keep it off the test loop's thread.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(command.upgrade, config, "head").result()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def fault_db(throwaway_postgres: ThrowawayPostgres) -> AsyncIterator[FaultDatabase]:
    """The cluster, running and with empty tables, for one test."""
    if not throwaway_postgres.running:
        throwaway_postgres.start()  # a previous test failed during its outage
    await _clear_tables(throwaway_postgres.url)
    database = FaultDatabase(throwaway_postgres.url)
    try:
        yield database
    finally:
        await database.close()
        if not throwaway_postgres.running:
            throwaway_postgres.start()
        await _clear_tables(throwaway_postgres.url)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


class MotoOnFixedPort:
    """moto's S3 server on one port, stoppable and restartable there (its buckets and objects
    live in this process's memory, so they survive a restart, like a real S3 outage)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: ThreadedMotoServer | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server, url = start_moto_server(self.port)
        assert url == self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def moto_on_fixed_port() -> Iterator[MotoOnFixedPort]:
    moto = MotoOnFixedPort()
    moto.start()
    try:
        yield moto
    finally:
        moto.stop()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
