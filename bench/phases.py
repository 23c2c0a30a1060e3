"""The measurements: ack path with references, drain, large message, py-spy profile."""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import topologies
from bench.bodies import Template, Tokens, large_body
from bench.db import Database
from bench.load import LoadGenerator
from bench.refs import database_rate
from bench.servers import (
    CpuMeter,
    RssSampler,
    Server,
    kave_env,
    reset_peak_rss,
    rss_kib,
    server_side_latency,
)

MIB = 1024 * 1024
KAVE_APP = "app.main:app"


@dataclass
class Options:
    duration: float = 20.0
    runs: int = 3
    connections: int = 16
    threads: int = 1
    warmup: float = 2.0
    drain_emails: int = 5000
    drain_connections: int = 16
    probe_rate: float = 20.0
    drain_timeout: float = 600.0
    large_mb: float = 25.0
    settle: float = 2.0
    max_rate: float = 3000.0  # first guess of the ack rate per worker, to size the body files
    log_level: str = "INFO"
    profile_seconds: float = 8.0
    latency_emails: int = 100
    phases: list[str] = field(default_factory=lambda: ["ack", "drain", "latency", "large"])


class Bench:
    def __init__(
        self,
        opts: Options,
        db: Database,
        load: LoadGenerator,
        workdir: Path,
        logdir: Path,
        log: Callable[[str], None],
    ) -> None:
        self.opts = opts
        self.db = db
        self.load = load
        self.template: Template = load.template
        self.tokens: Tokens = load.tokens
        self.workdir = workdir
        self.storage = workdir / "blobs"
        self.logdir = logdir
        self.log = log

    # -- helpers ---------------------------------------------------------------------------

    def kave(
        self, name: str, *, processing: bool, workers: int = 1, worker_processes: int = 0
    ) -> Server:
        env = kave_env(
            self.db.url,
            self.storage,
            processing=processing,
            log_level=self.opts.log_level,
            worker_processes=worker_processes,
        )
        return Server(name, KAVE_APP, self.logdir / f"{name}.log", workers=workers, env=env)

    def bodies_for(self, rate: float, seconds: float) -> int:
        """Enough distinct bodies for `seconds` at `rate` with a margin."""
        return math.ceil(rate * seconds * 1.3) + 500

    async def reset(self) -> None:
        await self.db.truncate()
        shutil.rmtree(self.storage, ignore_errors=True)

    async def wait_settled(self, expected: int, limit_s: float) -> dict[str, int]:
        """Poll until `expected` events exist and none is received/processing."""
        deadline = time.monotonic() + limit_s
        while True:
            counts = await self.db.statuses()
            pending = counts.get("received", 0) + counts.get("processing", 0)
            if sum(counts.values()) >= expected and pending == 0:
                return counts
            if time.monotonic() > deadline:
                raise TimeoutError(f"events not processed within {limit_s} s: {counts}")
            await asyncio.sleep(0.1)

    # -- 1, 2, 5: ack path, references, two workers ------------------------------------

    async def ack(self) -> dict[str, Any]:
        o = self.opts
        servers = {
            "ref_asgi": Server("ref-asgi", "bench.refs:asgi_app", self.logdir / "ref-asgi.log"),
            "ref_fastapi": Server(
                "ref-fastapi", "bench.refs:fastapi_app", self.logdir / "ref-fastapi.log"
            ),
            "kave_1w": self.kave("kave-1w", processing=False),
            "kave_2w": self.kave("kave-2w", processing=False, workers=2),
        }
        # As `uvicorn app.main:app` starts by default: processing on, in a worker child. Its
        # child claims whatever is due in the shared database, so it runs only for its own runs.
        default = self.kave("kave-default", processing=True, worker_processes=1)
        order = ["ref_asgi", "ref_fastapi", "ref_db", "kave_1w", "kave_default", "kave_2w"]
        expected = {"kave_1w": o.max_rate, "kave_2w": 2 * o.max_rate, "kave_default": o.max_rate}
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
        try:
            for name, server in servers.items():
                self.log(f"[ack] starting {name} (uvicorn, {server.workers} worker(s))")
                await server.start()
            await self.reset()
            for name, server in servers.items():
                self.log(f"[ack] warm-up {name}: {o.warmup:g} s")
                bodies = (
                    self.bodies_for(expected.get(name, 0), o.warmup) if "kave" in name else 2000
                )
                await self.load.run(
                    server.url, connections=o.connections, duration=o.warmup, bodies=bodies
                )
            await self.reset()
            payload = self.template.value(self.tokens.take(1)[0])
            for run in range(1, o.runs + 1):
                for name in order:
                    self.log(f"[ack] run {run}/{o.runs}: {name}, {o.duration:g} s")
                    if name == "ref_db":
                        result = await database_rate(
                            self.db,
                            payload,
                            duration=o.duration,
                            connections=o.connections,
                            sqlite_path=self.workdir / "refs.db" if self.db.is_sqlite else None,
                        )
                    else:
                        if name == "kave_default":
                            await self._start_default(default, bodies=expected[name])
                            servers[name] = default
                        is_kave = name.startswith("kave")
                        bodies = self.bodies_for(expected[name], o.duration) if is_kave else 5000
                        meter = CpuMeter(servers[name].pid)
                        log_offset = _size(servers[name].log_path)
                        result = await self.load.run(
                            servers[name].url,
                            connections=o.connections,
                            duration=o.duration,
                            bodies=bodies,
                        )
                        result.update(meter.read())
                        if is_kave:
                            result.update(
                                server_side_latency(
                                    servers[name].log_path, log_offset, self.template.path
                                )
                            )
                        result["bodies_prepared"] = bodies
                        if is_kave:
                            expected[name] = max(expected[name], 1.5 * result["rate"])
                            if result["repeats"]:
                                self.log(f"[ack] WARNING: {result['repeats']} bodies repeated")
                            if name == "kave_default":
                                del servers[name]
                                await default.astop()
                            await self.reset()
                    self.log(f"[ack]   -> {_brief(result)}")
                    results[name].append(result)
        finally:
            for server in [*servers.values(), default]:
                await server.astop()
        return results

    async def _start_default(self, server: Server, *, bodies: float) -> None:
        """Start the default topology on empty tables, wait for its worker child, warm up."""
        offset = server.log_path.stat().st_size if server.log_path.exists() else 0
        await server.start()
        await topologies.children_started(server, 1, offset)
        o = self.opts
        self.log(f"[ack] warm-up kave_default: {o.warmup:g} s")
        await self.load.run(
            server.url,
            connections=o.connections,
            duration=o.warmup,
            bodies=self.bodies_for(bodies, o.warmup),
        )

    # -- 3: drain in four topologies, and CPU per email against the parse floor ------------

    async def drain(self) -> dict[str, Any]:
        return await topologies.drain(self)

    # -- latency from the 200 to processed, at low load --------------------------------------

    async def latency(self) -> dict[str, Any]:
        return await topologies.latency(self)

    # -- 4: large message ----------------------------------------------------------------

    async def large(self) -> list[dict[str, Any]]:
        o = self.opts
        results = []
        size = int(o.large_mb * MIB)
        for run in range(1, o.runs + 1):
            await self.reset()
            self.log(f"[large] run {run}/{o.runs}: building a {o.large_mb:g} MiB attachment")
            body, headers = large_body(size, self.tokens.take(1)[0])
            server = self.kave("kave-large", processing=True)
            try:
                await server.start()
                warm = 20
                async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
                    for token, sig in zip(
                        toks := self.tokens.take(warm),
                        self.template.signatures(toks),
                        strict=True,
                    ):
                        await client.post(
                            self.template.path,
                            content=self.template.body(token),
                            headers=self.template.headers(sig),
                        )
                    await self.wait_settled(warm, o.drain_timeout)
                    await asyncio.sleep(1.0)
                    baseline = rss_kib(server.pid)
                    hwm_reset = reset_peak_rss(server.pid)
                    body_bytes = len(body)
                    self.log(
                        f"[large]   baseline RSS {baseline / 1024:.0f} MiB; "
                        f"posting {body_bytes / MIB:.1f} MiB"
                    )
                    sampler = RssSampler(server.pid)
                    sampler.start()
                    try:
                        started = time.perf_counter()
                        response = await client.post(
                            self.template.path, content=body, headers=headers
                        )
                        acked = time.perf_counter() - started
                        counts = await self.wait_settled(warm + 1, o.drain_timeout)
                        processed = time.perf_counter() - started
                    finally:
                        peak = sampler.stop()
                    hwm = rss_kib(server.pid, "VmHWM") if hwm_reset else 0
                    await asyncio.sleep(o.settle)
                    after = rss_kib(server.pid)
                peak = max(peak, hwm)
                if counts.get("processed", 0) != warm + 1:
                    self.log(f"[large]   WARNING: the message was not processed: {counts}")
                result = {
                    "status_code": response.status_code,
                    "response": response.text[:200],
                    "attachment_bytes": size,
                    "body_bytes": body_bytes,
                    "baseline_kib": baseline,
                    "peak_kib": peak,
                    "peak_sampled_kib": sampler.peak_kib,
                    "peak_vmhwm_kib": hwm,
                    "samples": sampler.samples,
                    "after_kib": after,
                    "ack_seconds": acked,
                    "processed_seconds": processed,
                    "statuses": counts,
                    "peak_over_body": peak * 1024 / body_bytes,
                    "growth_over_body": (peak - baseline) * 1024 / body_bytes,
                    "retained_over_body": (after - baseline) * 1024 / body_bytes,
                }
                self.log(
                    f"[large]   HTTP {response.status_code} in {acked:.1f} s, processed at "
                    f"{processed:.1f} s; peak {peak / 1024:.0f} MiB "
                    f"(+{result['growth_over_body']:.2f}x body), after {after / 1024:.0f} MiB"
                )
                results.append(result)
            finally:
                await server.astop()
        await self.reset()
        return results

    # -- py-spy profile of the ack path -------------------------------------------------------

    async def profile(self, out: Path) -> dict[str, Any]:
        o = self.opts
        server = self.kave("kave-profile", processing=False)
        try:
            await server.start()
            await self.reset()
            seconds = o.profile_seconds + 6
            self.log(f"[profile] ack load for {seconds:g} s, py-spy on pid {server.pid}")
            loading = asyncio.create_task(
                self.load.run(
                    server.url,
                    connections=o.connections,
                    duration=seconds,
                    bodies=self.bodies_for(o.max_rate, seconds),
                )
            )
            await asyncio.sleep(2)
            spy = await asyncio.create_subprocess_exec(
                "py-spy",
                "record",
                "-p",
                str(server.pid),
                "-d",
                str(int(o.profile_seconds)),
                "-f",
                "raw",
                "--threads",
                "-o",
                str(out),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            spy_output, _ = await asyncio.wait_for(spy.communicate(), o.profile_seconds + 60)
            load = await loading
            self.log(f"[profile]   load during profile: {_brief(load)}")
        finally:
            await server.astop()
            await self.reset()
        return {"load": load, "py_spy": spy_output.decode(errors="replace")[-2000:]}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _brief(result: dict[str, Any]) -> str:
    if "rows" in result:
        return f"{result['rate']:.0f} rows/s, p99 {result['p99_ms']:.1f} ms"
    return (
        f"{result['rate']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} "
        f"ms, errors {result['errors']}, not accepted {result['not_accepted']}"
    )
