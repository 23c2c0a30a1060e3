"""uvicorn server processes on 127.0.0.1: started in their own session, always stopped.

Every server started here is registered; `stop_all` (called from `finally` and atexit) stops
each one's process group: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

from app.tests.support import WEBHOOK_KEY, WEBHOOK_URL
from bench.db import ROOT

_RUNNING: list[Server] = []


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free port: from BENCH_PORTS (`low-high`, e.g. 8110-8129) when set, else any."""
    low, _, high = os.environ.get("BENCH_PORTS", "").partition("-")
    candidates = range(int(low), int(high or low) + 1) if low else [0]
    for port in candidates:
        if port and port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            found = int(s.getsockname()[1])
        _HANDED_OUT.add(found)
        return found
    raise RuntimeError(f"no free port left in BENCH_PORTS={os.environ['BENCH_PORTS']}")


def release_port(port: int) -> None:
    _HANDED_OUT.discard(port)


def kave_env(
    database_url: str,
    storage: Path,
    *,
    processing: bool,
    log_level: str,
    worker_processes: int = 0,
) -> dict[str, str]:
    return {
        "WORKER_PROCESSES": str(worker_processes),
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(storage),
        "MAILCHIMP_WEBHOOK_URL": WEBHOOK_URL,
        "MAILCHIMP_WEBHOOK_SECRET": WEBHOOK_KEY,
        "PROCESSING_ENABLED": "true" if processing else "false",
        "LOG_LEVEL": log_level,
        "LOG_FORMAT": "json",
    }


class Server:
    def __init__(
        self, name: str, app: str, log: Path, *, workers: int = 1, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.app = app
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # No peer's X-Forwarded-For believed unless configured, as `make run` does.
        self.env = {"FORWARDED_ALLOW_IPS": "", **os.environ, **(env or {})}
        self.log_path = log
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, limit_s: float = 60.0) -> Server:
        _HANDED_OUT.add(self.port)  # again, when a stopped server is started once more
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: ASYNC220 (our interpreter and module)
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench only; it stops this group itself
        )
        _RUNNING.append(self)
        deadline = time.monotonic() + limit_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.url}/health/live")).status_code == 200:
                        return self
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start in {limit_s} s; see {self.log_path}")

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--no-access-log",
            "--no-server-header",
        ]

    def stop(self, grace: float = 20.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self in _RUNNING:
            _RUNNING.remove(self)
        release_port(self.port)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)


class Worker(Server):
    """`python -m app.cli worker` (what `kave worker` runs), ready once its health port is."""

    def __init__(self, name: str, log: Path, *, env: dict[str, str]) -> None:
        super().__init__(name, "", log, env=env)
        self.env["WORKER_HEALTH_PORT"] = str(self.port)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "app.cli", "worker"]


def stop_all() -> None:
    for server in list(_RUNNING):
        server.stop(grace=10.0)


atexit.register(stop_all)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM (Linux >= 4.0, own processes); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child_pids(pid: int) -> list[int]:
    """The live children of `pid` (uvicorn's worker processes, the app's worker child)."""
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


def process_cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User + system CPU of `pid` and, unless `children` is False, its live children."""
    pids = [pid, *(child_pids(pid) if children else [])]
    total = 0
    for each in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, summed over its cores."""
    with contextlib.suppress(OSError):
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        total = sum(values) / os.sysconf("SC_CLK_TCK")
        idle = (values[3] + values[4]) / os.sysconf("SC_CLK_TCK")
        return total - idle, total
    return 0.0, 0.0


def server_side_latency(log: Path, offset: int, path: str) -> dict[str, float]:
    """p50/p99 of `path`'s requests as Kave itself timed them (its JSON access lines written
    after byte `offset` of its log): the time inside the server, without the client's."""
    durations = []
    with contextlib.suppress(OSError), log.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            if b'"http.request"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("path") == path and isinstance(entry.get("duration_ms"), int | float):
                    durations.append(float(entry["duration_ms"]))
    if not durations:
        return {}
    durations.sort()
    return {
        "server_p50_ms": durations[len(durations) // 2],
        "server_p99_ms": durations[min(len(durations) - 1, int(len(durations) * 0.99))],
    }


class CpuMeter:
    """Cores used by a server (its process tree) and by the whole machine over a span."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._server = process_cpu_seconds(pid)
        self._own = process_cpu_seconds(pid, children=False)
        self._busy, self._total = machine_busy_seconds()
        self._started = time.monotonic()

    def read(self) -> dict[str, float]:
        wall = max(time.monotonic() - self._started, 1e-9)
        busy, total = machine_busy_seconds()
        cores = (total - self._total) / wall if total > self._total else 0.0
        return {
            "server_cores": (process_cpu_seconds(self.pid) - self._server) / wall,
            # The server's own process alone (without uvicorn's workers or its worker child).
            "server_own_cores": (process_cpu_seconds(self.pid, children=False) - self._own) / wall,
            "machine_busy_cores": (busy - self._busy) / wall,
            "machine_cores": round(cores),
        }


class RssSampler(threading.Thread):
    """Samples VmRSS every `interval` seconds until stopped; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
                self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(5)
        return self.peak_kib
