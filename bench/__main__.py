"""`make bench`: Kave's ack path against references, drain, a large message, two workers.

    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/kave_bench \\
        .venv/bin/python -m bench            # full: 20 s x 3 runs per figure
    .venv/bin/python -m bench --quick        # smoke test: 3 s x 1 run, SQLite temp file
    .venv/bin/python -m bench --only ack     # one phase (ack, drain, latency, large)
    .venv/bin/python -m bench --profile      # py-spy profile of the ack path only

Every setting has an env variable (BENCH_DURATION, BENCH_RUNS, ...; see --help). Prints one
table and writes bench/results/latest.json (plus a timestamped copy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import profile as profiling
from bench.bodies import Template, Tokens
from bench.db import Database
from bench.load import LoadGenerator, ensure_wrk
from bench.phases import Bench, Options
from bench.report import Row, machine_info, render, summary, write_json
from bench.servers import stop_all
from bench.topology_report import topology_rows

RESULTS = Path(__file__).resolve().parent / "results"
KIB, MIB = 1024.0, 1024.0 * 1024.0
_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _T0:7.1f}s] {message}", flush=True)


def _env(name: str, default: Any) -> Any:
    value = os.environ.get(name)
    return default if value in (None, "") else type(default)(value)


def parse_args(argv: list[str]) -> tuple[Options, argparse.Namespace]:
    d = Options()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 3 s x 1 run, 500 drain")
    p.add_argument("--duration", type=float, default=_env("BENCH_DURATION", d.duration))
    p.add_argument("--runs", type=int, default=_env("BENCH_RUNS", d.runs))
    p.add_argument("--connections", type=int, default=_env("BENCH_CONNECTIONS", d.connections))
    p.add_argument("--threads", type=int, default=_env("BENCH_WRK_THREADS", d.threads))
    p.add_argument("--warmup", type=float, default=_env("BENCH_WARMUP", d.warmup))
    p.add_argument("--drain-emails", type=int, default=_env("BENCH_DRAIN_EMAILS", d.drain_emails))
    p.add_argument(
        "--latency-emails", type=int, default=_env("BENCH_LATENCY_EMAILS", d.latency_emails)
    )
    p.add_argument("--probe-rate", type=float, default=_env("BENCH_PROBE_RATE", d.probe_rate))
    p.add_argument("--large-mb", type=float, default=_env("BENCH_LARGE_MB", d.large_mb))
    p.add_argument("--max-rate", type=float, default=_env("BENCH_MAX_RATE", d.max_rate))
    p.add_argument("--log-level", default=_env("BENCH_LOG_LEVEL", d.log_level))
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL") or None)
    p.add_argument(
        "--only", default=os.environ.get("BENCH_ONLY", ""), help="ack,drain,latency,large"
    )
    p.add_argument("--profile", action="store_true", help="only a py-spy profile of the ack")
    p.add_argument("--profile-seconds", type=float, default=d.profile_seconds)
    p.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    p.add_argument("--no-wrk", action="store_true", help="use the httpx load generator")
    p.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    a = p.parse_args(argv)
    if a.quick:
        a.duration, a.runs, a.warmup = 3.0, 1, 1.0
        a.drain_emails = min(a.drain_emails, 500)
    phases = [x.strip() for x in a.only.split(",") if x.strip()] or d.phases
    unknown = set(phases) - set(d.phases)
    if unknown:
        p.error(f"unknown phase(s) {sorted(unknown)}; choose from {d.phases}")
    opts = Options(
        duration=a.duration,
        runs=max(1, a.runs),
        connections=a.connections,
        threads=a.threads,
        warmup=a.warmup,
        drain_emails=a.drain_emails,
        drain_connections=a.connections,
        probe_rate=a.probe_rate,
        latency_emails=a.latency_emails,
        large_mb=a.large_mb,
        max_rate=a.max_rate,
        log_level=a.log_level.upper(),
        profile_seconds=a.profile_seconds,
        phases=phases,
    )
    return opts, a


def _values(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in runs]


def _paired(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str = "rate") -> list[float]:
    return [x[key] / y[key] for x, y in zip(a, b, strict=False) if y[key]]


def build_rows(results: dict[str, Any], opts: Options) -> tuple[list[Row], dict[str, Any]]:
    """The table: one Row per figure (median/min/max over runs), headings in between."""
    rows: list[Row] = []
    figures: dict[str, Any] = {}

    def heading(text: str) -> None:
        rows.append(Row(text, None))

    def add(key: str, label: str, values: list[float], unit: str = "", **kw: Any) -> None:
        figures[key] = summary(values)
        rows.append(Row(label, figures[key], unit, **kw))

    def at_most(limit: float) -> Callable[[float], bool]:
        return lambda v: v <= limit

    def at_least(limit: float) -> Callable[[float], bool]:
        return lambda v: v >= limit

    ack = results.get("ack")
    if ack:
        k1, k2 = ack["kave_1w"], ack["kave_2w"]
        heading(f"Ack path: 1 worker, {opts.connections} connections, processing off")
        add("ack_rate", "Kave ack rate", _values(k1, "rate"), "req/s", digits=0)
        add("ack_p50_ms", "Kave ack p50", _values(k1, "p50_ms"), "ms")
        p99 = _values(k1, "p99_ms")
        add("ack_p99_ms", "Kave ack p99", p99, "ms", target="<= 50 ms", check=at_most(50))
        if all("server_p99_ms" in r for r in k1):
            add(
                "ack_server_p99_ms",
                "  the same, inside the server (its access log)",
                _values(k1, "server_p99_ms"),
                "ms",
            )
        add("ack_errors", "Kave errors (non-2xx + socket)", _values(k1, "errors"), digits=0)
        dups = [r["repeats"] + r["not_accepted"] for r in k1]
        add("ack_duplicates", "Kave bodies repeated / not accepted", dups, digits=0)
        cores = k1[0].get("machine_cores", 0) if k1 else 0
        add("ack_cores", "Kave CPU", _values(k1, "server_cores"), "cores", digits=2)
        add(
            "ack_machine_cores",
            f"machine busy, all processes (of {cores} cores)",
            _values(k1, "machine_busy_cores"),
            "cores",
            digits=2,
        )
        heading("References (same uvicorn settings; database: one-row commits)")
        fastapi, asgi, dbref = ack["ref_fastapi"], ack["ref_asgi"], ack["ref_db"]
        add(
            "ref_fastapi_rate",
            "bare FastAPI request.form() route",
            _values(fastapi, "rate"),
            "req/s",
            digits=0,
        )
        add("ref_asgi_rate", "bare ASGI app", _values(asgi, "rate"), "req/s", digits=0)
        conns = dbref[0]["connections"] if dbref else 0
        add(
            "ref_db_rate",
            f"database one-row commits ({conns} conn.)",
            _values(dbref, "rate"),
            "rows/s",
            digits=0,
        )
        add(
            "ratio_fastapi",
            "Kave / bare FastAPI form route",
            _paired(k1, fastapi),
            "x",
            target=">= 1.0x",
            check=at_least(1.0),
            digits=2,
        )
        add("ratio_asgi", "Kave / bare ASGI app", _paired(k1, asgi), "x", digits=2)
        add(
            "ratio_db",
            "Kave / database one-row commits",
            _paired(k1, dbref),
            "x",
            target=">= 0.6x",
            check=at_least(0.6),
            digits=2,
        )
        default = ack.get("kave_default")
        if default:
            heading("Default topology (uvicorn app.main:app: processing on, in 1 worker child)")
            add(
                "default_rate",
                "Kave ack rate while processing",
                _values(default, "rate"),
                "req/s",
                digits=0,
            )
            add("default_p50_ms", "Kave ack p50 while processing", _values(default, "p50_ms"), "ms")
            add(
                "default_p99_ms",
                "Kave ack p99 while processing",
                _values(default, "p99_ms"),
                "ms",
                target="<= 100 ms",
                check=at_most(100),
            )
            add(
                "default_cores",
                "Kave CPU (API + child)",
                _values(default, "server_cores"),
                "cores",
                digits=2,
            )
            add(
                "default_api_cores",
                "  of which the API process",
                _values(default, "server_own_cores"),
                "cores",
                digits=2,
            )
            add(
                "default_machine_cores",
                "machine busy, all processes",
                _values(default, "machine_busy_cores"),
                "cores",
                digits=2,
            )
            add(
                "ratio_default",
                "default topology / ack-only",
                _paired(default, k1),
                "x",
                target=">= 0.7x",
                check=at_least(0.7),
                digits=2,
            )
        heading("Two workers (--workers 2), same load")
        add("ack2_rate", "Kave ack rate, 2 workers", _values(k2, "rate"), "req/s", digits=0)
        add("ack2_p99_ms", "Kave ack p99, 2 workers", _values(k2, "p99_ms"), "ms")
        add("ack2_cores", "Kave CPU, 2 workers", _values(k2, "server_cores"), "cores", digits=2)
        add(
            "ack2_machine_cores",
            "machine busy, all processes",
            _values(k2, "machine_busy_cores"),
            "cores",
            digits=2,
        )
        add(
            "ratio_workers",
            "2 workers / 1 worker",
            _paired(k2, k1),
            "x",
            target=">= 1.6x",
            check=at_least(1.6),
            digits=2,
        )
    topology_rows(results, opts, heading, add, at_least, at_most)
    large = results.get("large")
    if large:
        heading(f"Large message: one {opts.large_mb:g} MiB attachment")
        add("large_body_mib", "request body", [r["body_bytes"] / MIB for r in large], "MiB")
        add(
            "large_baseline_mib",
            "server RSS before",
            [r["baseline_kib"] / KIB for r in large],
            "MiB",
        )
        add("large_peak_mib", "server peak RSS", [r["peak_kib"] / KIB for r in large], "MiB")
        add(
            "large_growth",
            "peak RSS growth / body size",
            _values(large, "growth_over_body"),
            "x",
            target="<= 5x",
            check=at_most(5),
            digits=2,
        )
        add(
            "large_peak_ratio",
            "peak RSS / body size (absolute)",
            _values(large, "peak_over_body"),
            "x",
            digits=2,
        )
        add(
            "large_after_mib",
            f"RSS {opts.settle:g} s after processed",
            [r["after_kib"] / KIB for r in large],
            "MiB",
        )
        add(
            "large_retained",
            "retained (after - before) / body size",
            _values(large, "retained_over_body"),
            "x",
            target="<= 0.5x (near)",
            check=at_most(0.5),
            digits=2,
        )
        add("large_processed_s", "POST -> processed", _values(large, "processed_seconds"), "s")
    return rows, figures


async def amain(opts: Options, args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="kave-bench-"))
    db = Database(args.database_url, workdir)
    started_at = datetime.now(UTC)
    try:
        wrk = None if args.no_wrk else ensure_wrk(install=not args.no_install)
        log(f"database {db.kind}; recreating and migrating; work dir {workdir}")
        await db.recreate()
        template = Template.inbound()
        log(f"load generator {'wrk' if wrk else 'httpx'}; body {template.body_size:,} bytes")
        load = LoadGenerator(template, Tokens(), workdir, wrk=wrk, threads=opts.threads)
        logdir = RESULTS / "logs"
        shutil.rmtree(logdir, ignore_errors=True)
        logdir.mkdir(parents=True)
        bench = Bench(opts, db, load, workdir, logdir, log)
        machine = machine_info(wrk, await db.version())
        if args.profile:
            RESULTS.mkdir(parents=True, exist_ok=True)
            raw = RESULTS / "profile-raw.txt"
            run = await bench.profile(raw)
            agg = profiling.aggregate(raw)
            print(profiling.render(agg))
            write_json(RESULTS / "profile.json", {"machine": machine, **run, "profile": agg})
            log(f"wrote {raw} and {RESULTS / 'profile.json'}")
            return 0
        results: dict[str, Any] = {}
        for phase in opts.phases:
            log(f"== phase {phase} ==")
            results[phase] = await getattr(bench, phase)()
        machine["loadavg_end"] = os.getloadavg()
        rows, figures = build_rows(results, opts)
        start, end = machine["loadavg"][0], machine["loadavg_end"][0]
        title = (
            f"Kave bench, {machine['cores']} cores ({machine['cpu_model']}), {db.kind}, "
            f"{opts.duration:g} s x {opts.runs} run(s), load by {load.tool}, "
            f"LOG_LEVEL={opts.log_level}\nload average at start {start:.2f}, at end {end:.2f}"
            " (other work on the machine skews every figure)"
        )
        if wrk is None:
            title += "\nhttpx fallback: the client is the bottleneck; rates and ratios are low"
        print()
        print(render(rows, title))
        data = {
            "started_at": started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "machine": machine,
            "options": asdict(opts),
            "body_bytes": template.body_size,
            "figures": figures,
            "targets": {
                row.label: {"target": row.target, "median": row.stat["median"], "met": row.met}
                for row in rows
                if row.target and row.stat
            },
            "runs": results,
        }
        write_json(args.output, data)
        stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
        write_json(args.output.with_name(f"{stamp}-{db.kind}.json"), data)
        log(f"wrote {args.output}")
        return 0
    finally:
        stop_all()
        with contextlib.suppress(Exception):
            await db.truncate()
        with contextlib.suppress(Exception):
            await db.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    opts, args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(amain(opts, args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\n[bench] interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
