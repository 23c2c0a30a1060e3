"""Processing topologies side by side: drain, CPU per email, and the 200-to-processed latency.

Drain: the same 5,000 emails posted (16 connections) to
  inline    one uvicorn process that also processes (WORKER_PROCESSES=0, the old default)
  default   `uvicorn app.main:app` as started by default (processing in 1 worker child)
  workers_1 an acknowledge-only API beside 1 `kave worker` process
  workers_2 the same beside 2 `kave worker` processes
timed from the first POST until every event is processed. An open-loop probe posts while the
posting runs (its p99 is the acknowledgement while mail arrives and is processed at once).
CPU per email is the processing processes' CPU time over the drain divided by the emails; the
floor is the stdlib parse of the same message, timed in the bench process after each
topology's drain (the median of the four is the run's floor).
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from bench.load import probe
from bench.servers import (
    Server,
    Worker,
    child_pids,
    kave_env,
    machine_busy_seconds,
    process_cpu_seconds,
)

if TYPE_CHECKING:
    from bench.phases import Bench


PROBE_CAP_SECONDS = 120.0
TOKEN = re.compile(r"bench-([0-9a-f]{16})@")


@dataclass(frozen=True)
class Topology:
    processing: bool
    worker_processes: int  # the app's children
    workers: int  # separate `kave worker` processes


TOPOLOGIES = {
    "inline": Topology(True, 0, 0),
    "default": Topology(True, 1, 0),
    "workers_1": Topology(False, 0, 1),
    "workers_2": Topology(False, 0, 2),
}


def _workers(bench: Bench, name: str, count: int) -> list[Worker]:
    env = kave_env(bench.db.url, bench.storage, processing=True, log_level=bench.opts.log_level)
    return [
        Worker(f"{name}-w{i}", bench.logdir / f"{name}-w{i}.log", env=env) for i in range(count)
    ]


def _log_size(server: Server) -> int:
    return server.log_path.stat().st_size if server.log_path.exists() else 0


async def children_started(server: Server, count: int, offset: int, limit_s: float = 60.0) -> None:
    """Until the app's worker children have said they are running (in the app's log)."""
    deadline = time.monotonic() + limit_s
    while count and time.monotonic() < deadline:
        if server.log_path.read_bytes()[offset:].count(b'"worker.process.started"') >= count:
            return
        await asyncio.sleep(0.1)


async def _drain_once(bench: Bench, name: str, topology: Topology, run: int) -> dict[str, Any]:
    o = bench.opts
    await bench.reset()
    server = bench.kave(
        f"drain-{name}",
        processing=topology.processing,
        worker_processes=topology.worker_processes,
    )
    workers = _workers(bench, f"drain-{name}", topology.workers)
    try:
        offset = _log_size(server)
        await server.start()
        for worker in workers:
            await worker.start()
        await children_started(server, topology.worker_processes, offset)
        # The processes that process: the workers, the app's children, or the app itself.
        processing_pids = [w.pid for w in workers] or child_pids(server.pid) or [server.pid]
        cpu_before = sum(process_cpu_seconds(pid) for pid in processing_pids)
        busy_before, _ = machine_busy_seconds()
        bench.log(f"[drain] run {run}/{o.runs}: {name}: posting {o.drain_emails} emails")
        probe_tokens = bench.tokens.take(int(o.probe_rate * PROBE_CAP_SECONDS) + 1)
        stop = asyncio.Event()
        started = time.perf_counter()
        probing = asyncio.create_task(
            probe(
                server.url,
                bench.template,
                probe_tokens,
                bench.template.signatures(probe_tokens),
                rate=o.probe_rate,
                stop=stop,
            )
        )
        posting = await bench.load.run(
            server.url,
            connections=o.drain_connections,
            duration=o.drain_timeout,
            bodies=o.drain_emails,
            limit=True,
        )
        posted_at = time.perf_counter() - started
        stop.set()
        probe_result = await probing
        accepted = posting["requests"] - posting["not_accepted"] - posting["non200"]
        total = accepted + probe_result["accepted"]
        counts = await bench.wait_settled(total, o.drain_timeout)
        elapsed = time.perf_counter() - started
        cpu = sum(process_cpu_seconds(pid) for pid in processing_pids) - cpu_before
        busy = machine_busy_seconds()[0] - busy_before
        processed = counts.get("processed", 0)
        result = {
            "topology": name,
            "emails_posted": o.drain_emails,
            "emails_accepted": accepted,
            "probe_emails_accepted": probe_result["accepted"],
            "statuses": counts,
            "not_processed": sum(counts.values()) - processed,
            "seconds": elapsed,
            "posting_seconds": posted_at,
            "rate": processed / elapsed,
            "processing_cpu_seconds": cpu,
            "cpu_ms_per_email": 1000 * cpu / processed if processed else float("nan"),
            # Over the whole drain: what the processing processes and every process on the
            # machine (API, database, load generator) kept busy, in cores.
            "processing_cores": cpu / elapsed,
            "machine_busy_cores": busy / elapsed,
            "posting": posting,
            "probe": probe_result,
        }
        bench.log(
            f"[drain]   {name}: {processed} processed in {elapsed:.1f} s = "
            f"{result['rate']:.0f}/s; posting {posting['rate']:.0f} req/s p99 "
            f"{posting['p99_ms']:.0f} ms; probe p99 {probe_result['p99_ms']:.1f} ms over "
            f"{probe_result['requests']}; CPU {result['cpu_ms_per_email']:.2f} ms/email; "
            f"cores: processing {result['processing_cores']:.2f}, machine "
            f"{result['machine_busy_cores']:.2f}"
        )
        return result
    finally:
        for worker in workers:
            await worker.astop()
        await server.astop()


def stdlib_parse_ms(raw: bytes, repeat: int = 300) -> float:
    """The stdlib parse of `raw` (the cheapest policy, compat32, and every leaf part's payload
    decoded): the least any parser spends on it, per message, in this process, in ms."""

    def parse() -> None:
        message = message_from_bytes(raw, policy=policy.compat32)
        for part in message.walk():
            if not part.is_multipart():
                part.get_payload(decode=True)

    for _ in range(20):
        parse()
    best = float("inf")
    for _ in range(3):  # the least disturbed of three rounds
        started = time.process_time()
        for _ in range(repeat):
            parse()
        best = min(best, (time.process_time() - started) / repeat)
    return best * 1000


def parse_floor_ms(bench: Bench, repeat: int = 300) -> dict[str, float]:
    """The parse floor of one bench message (`stdlib_parse_ms`)."""
    event = orjson.loads(bench.template.value(bench.tokens.take(1)[0]))[0]
    raw = event["msg"]["raw_msg"].encode()
    return {"parse_ms": stdlib_parse_ms(raw, repeat), "raw_bytes": float(len(raw))}


async def drain(bench: Bench) -> dict[str, Any]:
    results: dict[str, Any] = {name: [] for name in TOPOLOGIES}
    results["floor"] = []
    for run in range(1, bench.opts.runs + 1):
        # The machine's speed drifts within a run (the same floor read 0.4 and 1.1 ms minutes
        # apart): the floor is timed after each topology's drain, and its median is the run's.
        floors = []
        for name, topology in TOPOLOGIES.items():
            results[name].append(await _drain_once(bench, name, topology, run))
            floors.append(parse_floor_ms(bench))
        samples = sorted(f["parse_ms"] for f in floors)
        results["floor"].append(
            {**floors[0], "parse_ms": statistics.median(samples), "samples_ms": samples}
        )
        bench.log(
            f"[drain]   stdlib parse floor {results['floor'][-1]['parse_ms']:.2f} ms (median of "
            + ", ".join(f"{v:.2f}" for v in samples)
            + ")"
        )
    await bench.reset()
    return results


# -- latency from the 200 to processed, at low load -------------------------------------------


def _as_utc(value: Any) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


async def _latency_once(bench: Bench, name: str, topology: Topology) -> dict[str, Any]:
    o = bench.opts
    await bench.reset()
    server = bench.kave(
        f"latency-{name}",
        processing=topology.processing,
        worker_processes=topology.worker_processes,
    )
    workers = _workers(bench, f"latency-{name}", topology.workers)
    try:
        offset = _log_size(server)
        await server.start()
        for worker in workers:
            await worker.start()
        await children_started(server, topology.worker_processes, offset)
        tokens = bench.tokens.take(o.latency_emails)
        sent: dict[str, tuple[float, float]] = {}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            for token, signature in zip(tokens, bench.template.signatures(tokens), strict=True):
                before = time.time()
                response = await client.post(
                    bench.template.path,
                    content=bench.template.body(token),
                    headers=bench.template.headers(signature),
                )
                if response.status_code == 200:
                    sent[token] = (before, time.time())
                await asyncio.sleep(0.1)  # low load: one email every ~100 ms
        await bench.wait_settled(len(sent), o.drain_timeout)
        rows = await bench.db._fetch(
            "SELECT e.message_id, w.processed_at FROM emails e "
            "JOIN webhook_events w ON w.id = e.event_id"
        )
    finally:
        for worker in workers:
            await worker.astop()
        await server.astop()
    done_at = {}
    for message_id, done in rows:
        found = TOKEN.search(message_id or "")
        if found and found[1] in sent and done is not None:
            done_at[found[1]] = _as_utc(done)
    after_200 = sorted(1000 * (done_at[t] - sent[t][1]) for t in done_at)
    after_post = sorted(1000 * (done_at[t] - sent[t][0]) for t in done_at)

    def pct(values: list[float], p: float) -> float:
        return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")

    result = {
        "topology": name,
        "emails": len(after_200),
        "p50_ms": pct(after_200, 50),
        "p99_ms": pct(after_200, 99),
        "from_post_p50_ms": pct(after_post, 50),
    }
    bench.log(
        f"[latency] {name}: 200 -> processed p50 {result['p50_ms']:.1f} ms, p99 "
        f"{result['p99_ms']:.1f} ms over {result['emails']} emails"
    )
    return result


async def latency(bench: Bench) -> dict[str, Any]:
    results: dict[str, Any] = {"workers_1": [], "default": []}
    for _ in range(bench.opts.runs):
        for name in results:
            results[name].append(await _latency_once(bench, name, TOPOLOGIES[name]))
    await bench.reset()
    return results


__all__ = ["TOPOLOGIES", "Server", "drain", "latency", "parse_floor_ms", "stdlib_parse_ms"]
