"""`make bench-unsigned`: what unsigned large bodies cost a real server before they are refused.

    .venv/bin/python -m bench.unsigned              # 4 concurrent 60 MiB posts, 3 runs
    .venv/bin/python -m bench.unsigned --mb 60 --concurrency 4 --runs 1

Starts one Kave server (processing on, as `make run`), warms it with a few signed webhooks,
measures its idle RSS, then fires `--concurrency` unsigned (wrongly signed) posts of `--mb` MiB
at once while sampling the server's RSS (and VmHWM) and timing `GET /health/live` every
`--probe-interval` seconds. Targets: peak RSS <= 1.5x idle + one body; every health probe
answered in < 50 ms; every post refused 401. BENCH_DATABASE_URL selects PostgreSQL (a
database whose name contains "bench"; recreated), else a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import shutil
import socket
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.bodies import CONTENT_TYPE, USER_AGENT, Template, Tokens
from bench.db import Database
from bench.report import Row, render, summary, write_json
from bench.servers import RssSampler, Server, kave_env, reset_peak_rss, rss_kib, stop_all

MIB = 1024 * 1024
RESULTS = Path(__file__).resolve().parent / "results"
HEALTH_TARGET_MS = 50.0


def unsigned_body(size: int) -> bytes:
    """A Mandrill-shaped inbound body of exactly `size` bytes: one event whose raw_msg is a
    base64 attachment, JSON-escaped (`\\/`, `\\r\\n`) and url-encoded as Mandrill sends it."""
    prefix = (
        b"mandrill_events=%5B%7B%22event%22%3A%22inbound%22%2C%22msg%22%3A%7B%22raw_msg%22%3A%22"
    )
    suffix = b"%22%7D%7D%5D"
    room = size - len(prefix) - len(suffix)
    lines = base64.encodebytes(os.urandom(room * 3 // 4 + 64))  # more than needed
    content = lines.replace(b"\n", b"%5Cr%5Cn").replace(b"/", b"%5C%2F").replace(b"+", b"%2B")
    content = content[:room]
    cut = content.rfind(b"%", len(content) - 2)  # never end inside an escape
    if cut != -1:
        content = content[:cut] + b"A" * (room - cut)
    body = prefix + content + suffix
    assert len(body) == size
    return body


def wrong_signature() -> str:
    return base64.b64encode(os.urandom(20)).decode("ascii")  # well-formed, matches no key


async def _probe_health(url: str, interval: float, stop: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            response = await client.get("/health/live")
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code == 200:
                latencies.append(elapsed)
            else:
                latencies.append(float("inf"))
            await asyncio.sleep(interval)
    return latencies


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def _post_raw(host: str, port: int, request: bytes, body: bytes) -> tuple[Any, Any]:
    """One HTTP/1.1 POST over a plain socket: the kernel copies the body, so the client costs
    next to no CPU beside the server it measures. (status, error code) of the answer."""
    with socket.create_connection((host, port), timeout=600) as sock:
        sock.sendall(request)
        sock.sendall(body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        code = json.loads(content).get("error", {}).get("code")
    except ValueError:
        code = None
    return status, code


_BODIES: dict[int, bytes] = {}


def prepare_body(size: int) -> int:
    """Build the body in the poster's process before anything is measured."""
    _BODIES[size] = unsigned_body(size)
    return size


def post_unsigned(url: str, path: str, size: int, concurrency: int) -> list[tuple[Any, Any]]:
    """In a process of its own (so the client's work never delays the health probe): post
    `concurrency` unsigned bodies of `size` bytes at once; (status, error code) of each."""
    body = _BODIES.get(size) or unsigned_body(size)
    parts = urlsplit(url)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"User-Agent: {USER_AGENT}\r\nX-Mandrill-Signature: {wrong_signature()}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    with ThreadPoolExecutor(concurrency) as threads:
        futures = [threads.submit(_post_raw, host, port, request, body) for _ in range(concurrency)]
        answers: list[tuple[Any, Any]] = []
        for future in futures:
            try:
                answers.append(future.result())
            except OSError as exc:
                answers.append((type(exc).__name__, None))
        return answers


async def one_run(server: Server, size: int, args: argparse.Namespace) -> dict[str, Any]:
    template = Template.inbound()
    tokens = Tokens().take(args.warm)
    async with httpx.AsyncClient(base_url=server.url, timeout=600) as client:
        for token, signature in zip(tokens, template.signatures(tokens), strict=True):
            await client.post(
                template.path, content=template.body(token), headers=template.headers(signature)
            )
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        loop = asyncio.get_running_loop()
        # The poster's interpreter starts and builds its body before anything is measured.
        await loop.run_in_executor(pool, prepare_body, size)
        await asyncio.sleep(args.settle)
        idle_kib = rss_kib(server.pid)
        hwm_reset = reset_peak_rss(server.pid)
        stop = asyncio.Event()
        idle_probe = asyncio.create_task(_probe_health(server.url, args.probe_interval, stop))
        await asyncio.sleep(1.0)
        stop.set()
        idle_latencies = await idle_probe

        sampler = RssSampler(server.pid, interval=0.01)
        sampler.start()
        stop = asyncio.Event()
        probing = asyncio.create_task(_probe_health(server.url, args.probe_interval, stop))
        started = time.perf_counter()
        try:
            answers = await loop.run_in_executor(
                pool, post_unsigned, server.url, template.path, size, args.concurrency
            )
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            latencies = await probing
            peak_kib = sampler.stop()
    hwm_kib = rss_kib(server.pid, "VmHWM") if hwm_reset else 0
    await asyncio.sleep(args.settle)
    after_kib = rss_kib(server.pid)
    statuses = [status for status, _ in answers]
    codes = [code for _, code in answers]
    peak = max(peak_kib, hwm_kib)
    target_kib = 1.5 * idle_kib + size / 1024
    return {
        "body_bytes": size,
        "concurrency": args.concurrency,
        "idle_kib": idle_kib,
        "peak_kib": peak,
        "peak_sampled_kib": peak_kib,
        "peak_vmhwm_kib": hwm_kib,
        "after_kib": after_kib,
        "target_peak_kib": target_kib,
        "peak_over_target": peak / target_kib,
        "growth_over_body": (peak - idle_kib) * 1024 / size,
        "statuses": statuses,
        "codes": codes,
        "seconds": elapsed,
        "health_requests": len(latencies),
        "health_max_ms": max(latencies) if latencies else float("nan"),
        "health_p99_ms": _percentile(latencies, 99),
        "health_p50_ms": _percentile(latencies, 50),
        "health_idle_max_ms": max(idle_latencies) if idle_latencies else float("nan"),
    }


def rows_for(runs: list[dict[str, Any]], args: argparse.Namespace) -> list[Row]:
    def values(key: str, scale: float = 1.0) -> dict[str, Any]:
        return summary([r[key] * scale for r in runs])

    kib = 1 / 1024
    refused = [sum(1 for s in r["statuses"] if s == 401) for r in runs]
    return [
        Row(f"{args.concurrency} concurrent unsigned posts of {args.mb:g} MiB", None),
        Row("server RSS idle", values("idle_kib", kib), "MiB"),
        Row("server peak RSS", values("peak_kib", kib), "MiB"),
        Row("  limit: 1.5x idle + one body", values("target_peak_kib", kib), "MiB"),
        Row(
            "peak RSS / limit",
            values("peak_over_target"),
            "x",
            target="<= 1.0x",
            check=lambda v: v <= 1.0,
            digits=2,
        ),
        Row("peak RSS growth / one body", values("growth_over_body"), "x", digits=2),
        Row("RSS after", values("after_kib", kib), "MiB"),
        Row(
            "posts refused 401",
            summary(refused),
            f"of {args.concurrency}",
            target=f"= {args.concurrency}",
            check=lambda v: v == args.concurrency,
            digits=0,
        ),
        Row("time to answer all posts", values("seconds"), "s"),
        Row("GET /health/live during the posts", None),
        Row("probes answered", values("health_requests"), "", digits=0),
        Row(
            "max latency",
            values("health_max_ms"),
            "ms",
            target=f"< {HEALTH_TARGET_MS:g} ms",
            check=lambda v: v < HEALTH_TARGET_MS,
        ),
        Row("p99 latency", values("health_p99_ms"), "ms"),
        Row("p50 latency", values("health_p50_ms"), "ms"),
        Row("max latency idle (before the posts)", values("health_idle_max_ms"), "ms"),
    ]


async def amain(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="kave-bench-unsigned-"))
    db = Database(args.database_url, workdir)
    try:
        print(f"[bench-unsigned] database {db.kind}", flush=True)
        await db.recreate()
        env = kave_env(db.url, workdir / "blobs", processing=True, log_level="INFO")
        runs = []
        for run in range(1, args.runs + 1):
            server = Server("kave-unsigned", "app.main:app", workdir / f"server-{run}.log", env=env)
            await server.start()
            try:
                result = await one_run(server, int(args.mb * MIB), args)
            finally:
                await server.astop()
            print(
                f"[bench-unsigned] run {run}/{args.runs}: idle {result['idle_kib'] / 1024:.0f} MiB,"
                f" peak {result['peak_kib'] / 1024:.0f} MiB (limit"
                f" {result['target_peak_kib'] / 1024:.0f}), statuses {result['statuses']},"
                f" health max {result['health_max_ms']:.1f} ms",
                flush=True,
            )
            runs.append(result)
            await db.truncate()
        title = (
            f"Kave bench-unsigned, {os.cpu_count()} cores, {db.kind}, {args.runs} run(s)"
            f"\nload average at end {os.getloadavg()[0]:.2f} (other work on the machine skews it)"
        )
        print()
        print(render(rows_for(runs, args), title))
        options = vars(args) | {"output": str(args.output)}
        write_json(args.output, {"options": options, "runs": runs})
        print(f"[bench-unsigned] wrote {args.output}")
        return 0
    finally:
        stop_all()
        await db.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.unsigned", description=__doc__.split("\n")[0])
    p.add_argument("--mb", type=float, default=60.0, help="body size in MiB")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warm", type=int, default=20, help="signed webhooks before measuring")
    p.add_argument("--settle", type=float, default=2.0)
    p.add_argument("--probe-interval", type=float, default=0.01)
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL") or None)
    p.add_argument("--output", type=Path, default=RESULTS / "unsigned-latest.json")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(amain(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\n[bench-unsigned] interrupted; server stopped", file=sys.stderr)
        return 130
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
