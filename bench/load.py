"""Load generators: wrk with bench/wrk_bodies.lua, else a bounded httpx client; a fixed-rate probe.

Every result is a dict with the same keys: rate (answered POSTs per second), p50/p90/p99/max
latency in ms, errors (non-200 + socket errors), repeats (bodies sent twice), not_accepted
(200s that accepted nothing, i.e. duplicates), and the raw counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench.bodies import Template, Tokens, write_tokens

LUA_SCRIPT = Path(__file__).with_name("wrk_bodies.lua")


def ensure_wrk(*, install: bool = True) -> str | None:
    """wrk's path; installs it from apt when missing and we may (root, apt-get present)."""
    path = shutil.which("wrk")
    if path:
        return path
    if install and shutil.which("apt-get") and os.geteuid() == 0:
        print("[bench] wrk is missing: apt-get install -y wrk", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install_wrk = ["apt-get", "install", "-y", "wrk"]
        if subprocess.run(install_wrk, env=env, check=False, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=False, timeout=600)
            subprocess.run(install_wrk, env=env, check=False, timeout=600)
        path = shutil.which("wrk")
    if path is None:
        print("[bench] no wrk: using the (slower) httpx load generator", flush=True)
    return path


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


def _finish(raw: dict[str, Any], *, limit: bool) -> dict[str, Any]:
    seconds = raw["duration_us"] / 1e6
    answered = raw["answered"] if limit else raw["requests"]
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "rate": answered / seconds if seconds else 0.0,
        "requests": answered,
        "seconds": seconds,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "errors": raw["non200"] + socket_errors,
        "non200": raw["non200"],
        "socket_errors": socket_errors,
        "not_accepted": raw["not_accepted"],
        "repeats": raw["repeats"],
        "raw": raw,
    }


class LoadGenerator:
    def __init__(
        self, template: Template, tokens: Tokens, workdir: Path, *, wrk: str | None, threads: int
    ) -> None:
        self.template = template
        self.tokens = tokens
        self.workdir = workdir
        self.wrk = wrk
        self.threads = threads
        self.segments = workdir / "segments.txt"
        template.write_segments(self.segments)
        self._files = 0

    @property
    def tool(self) -> str:
        return "wrk" if self.wrk else "httpx"

    async def run(
        self,
        url: str,
        *,
        connections: int,
        duration: float,
        bodies: int,
        limit: bool = False,
    ) -> dict[str, Any]:
        """POST `bodies` distinct bodies: for `duration` s (cycling if they run out), or with
        `limit`, each exactly once as fast as they are answered (`duration` is then a cap)."""
        tokens = self.tokens.take(bodies)
        if self.wrk is None:
            return await _httpx_load(
                url, self.template, tokens, connections=connections, duration=duration, limit=limit
            )
        self._files += 1
        token_file = self.workdir / f"tokens-{self._files}.txt"
        write_tokens(token_file, self.template, tokens)
        threads = 1 if limit else max(1, min(self.threads, connections))
        args = [
            self.wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, math.ceil(duration))}s",
            "--timeout",
            "30s",
            "-s",
            str(LUA_SCRIPT),
            url,
            "--",
            str(self.segments),
            str(token_file),
            str(threads),
            "limit" if limit else "cycle",
            self.template.path,
        ]
        try:
            output = await _run(args, limit_s=duration + 120)
        finally:
            token_file.unlink(missing_ok=True)
        match = re.search(r"^BENCH_RESULT (.*)$", output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk printed no result:\n{output}")
        raw: dict[str, Any] = {}
        for item in match.group(1).split():
            key, value = item.split("=", 1)
            raw[key] = float(value) if "." in value else int(value)
        return _finish(raw, limit=limit)


async def _run(args: list[str], *, limit_s: float) -> str:
    """Run wrk; SIGINT it (it then reports and calls done()) once it prints BENCH_DONE."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    assert process.stdout is not None
    lines: list[bytes] = []

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            lines.append(line)
            if line.startswith(b"BENCH_DONE"):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
        await process.wait()

    try:
        await asyncio.wait_for(read(), limit_s)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    text = b"".join(lines).decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{args[0]} exited with {process.returncode}:\n{text}")
    return text


async def _post(
    client: httpx.AsyncClient, template: Template, token: str, signature: str
) -> httpx.Response:
    """One signed webhook: the body carrying `token`, with its signature."""
    return await client.post(
        template.path, content=template.body(token), headers=template.headers(signature)
    )


async def _httpx_load(
    url: str,
    template: Template,
    tokens: list[str],
    *,
    connections: int,
    duration: float,
    limit: bool,
) -> dict[str, Any]:
    """The fallback: `connections` concurrent keep-alive clients, bounded by time and count."""
    signatures = template.signatures(tokens)
    latencies: list[float] = []
    counts = dict.fromkeys(("non200", "not_accepted", "read", "repeats", "answered"), 0)
    position = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        deadline = started + duration

        async def worker() -> None:
            nonlocal position
            while time.perf_counter() < deadline:
                if position >= len(tokens) and limit:
                    return
                i = position % len(tokens)
                counts["repeats"] += position >= len(tokens)
                position += 1
                sent = time.perf_counter()
                try:
                    response = await _post(client, template, tokens[i], signatures[i])
                except httpx.HTTPError:
                    counts["read"] += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                counts["answered"] += 1
                if response.status_code != 200:
                    counts["non200"] += 1
                elif b'"accepted":0' in response.content:
                    counts["not_accepted"] += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    raw = {
        "requests": counts["answered"],
        "duration_us": elapsed * 1e6,
        "connect": 0,
        "write": 0,
        "timeout": 0,
        **counts,
        **{f"p{p}_us": _percentile(latencies, p) * 1e6 for p in (50, 90, 99)},
        "max_us": (latencies[-1] if latencies else math.nan) * 1e6,
        "mean_us": (sum(latencies) / len(latencies) if latencies else math.nan) * 1e6,
    }
    return _finish(raw, limit=limit)


async def probe(
    url: str,
    template: Template,
    tokens: list[str],
    signatures: list[str],
    *,
    rate: float,
    stop: asyncio.Event,
) -> dict[str, Any]:
    """Open-loop probe: one POST every 1/rate s until `stop` (or the tokens run out), latency
    counted from each request's scheduled time, so a stalled server cannot hide its stalls."""
    latencies: list[float] = []
    counts = {"non200": 0, "errors": 0, "accepted": 0}
    in_flight: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(i: int, scheduled: float) -> None:
            try:
                response = await _post(client, template, tokens[i], signatures[i])
            except httpx.HTTPError:
                counts["errors"] += 1
                return
            latencies.append(time.perf_counter() - scheduled)
            if response.status_code != 200:
                counts["non200"] += 1
            else:
                counts["accepted"] += int(response.json().get("accepted", 0))

        started = time.perf_counter()
        for i in range(len(tokens)):
            scheduled = started + i / rate
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, scheduled - time.perf_counter()))
            if stop.is_set():
                break
            task = asyncio.create_task(one(i, scheduled))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=60)
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate_target": rate,
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else math.nan,
        "errors": counts["non200"] + counts["errors"],
        "accepted": counts["accepted"],
    }
