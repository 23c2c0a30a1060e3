"""Run Kave as a real uvicorn process, for tests that kill, restart or duplicate servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from app.tests.support import WEBHOOK_KEY, WEBHOOK_URL

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, *, database_url: str, storage_path: Path, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "STORAGE_BACKEND": "local",
            "STORAGE_LOCAL_PATH": str(storage_path),
            "MAILCHIMP_WEBHOOK_URL": WEBHOOK_URL,
            "MAILCHIMP_WEBHOOK_SECRET": WEBHOOK_KEY,
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            # As Kave's launchers (make run, the image) start it: no peer's X-Forwarded-For is
            # believed unless a test says so (uvicorn's own default trusts 127.0.0.1).
            "FORWARDED_ALLOW_IPS": "",
            "EVENT_LEASE_SECONDS": "3",
            "RECOVERY_INTERVAL_SECONDS": "0.2",
            "RETRY_BASE_SECONDS": "0.1",
            "RETRY_MAX_SECONDS": "1",
            # The fault tests scrape processing figures from the API process: processing in
            # its loop unless a test asks for worker children (WORKER_PROCESSES=1, the default).
            "WORKER_PROCESSES": "0",
            **env,
        }
        self.log_path = log
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._close_log()

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop_quietly(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._close_log()


class WorkerProcess:
    """`python -m app.cli worker` with the same environment as a ServerProcess, and its
    health port on a free port of its own."""

    def __init__(self, *, database_url: str, storage_path: Path, log: Path, **env: str) -> None:
        self.health_port = free_port()
        self.url = f"http://127.0.0.1:{self.health_port}"
        base = ServerProcess(database_url=database_url, storage_path=storage_path, log=log)
        self.env = {**base.env, "WORKER_HEALTH_PORT": str(self.health_port), **env}
        self.log_path = log
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health/live", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"worker did not start in {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 40.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop_quietly(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
