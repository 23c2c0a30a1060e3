"""`make soak`: a steady rate of signed webhooks for a fixed time against one Kave server.

Reports the rate held, errors, latency percentiles, and whether every acknowledged email was
processed (none lost). Loopback only; it stops by itself. Exit status 1 when the rate was not
held, a request failed or an acknowledged event was not processed.

    SOAK_DATABASE_URL  PostgreSQL URL whose database name contains "bench" (recreated);
                       unset: a temporary SQLite file
    SOAK_RATE          webhooks per second (default 50)
    SOAK_DURATION      seconds (default 120; CI uses 15)
    SOAK_DRAIN_TIMEOUT seconds to wait for processing after the last POST (default 300)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.bodies import Template, Tokens
from bench.db import Database
from bench.load import probe
from bench.servers import Server, kave_env, stop_all

RESULTS = Path(__file__).resolve().parent / "results"


async def soak(*, database_url: str | None, rate: float, duration: float, drain: float) -> int:
    with tempfile.TemporaryDirectory(prefix="kave-soak-") as tmp:
        work = Path(tmp)
        db = Database(database_url, work)
        await db.recreate()
        env = kave_env(db.url, work / "blobs", processing=True, log_level="WARNING")
        server = await Server("kave", "app.main:app", work / "server.log", env=env).start()
        try:
            template = Template.inbound()
            tokens = Tokens().take(int(rate * duration))
            signatures = template.signatures(tokens)
            print(f"soak: {rate:.0f} webhooks/s for {duration:.0f} s on {db.kind}", flush=True)
            load = await probe(
                server.url, template, tokens, signatures, rate=rate, stop=asyncio.Event()
            )
            posted_at = time.perf_counter()
            statuses: dict[str, int] = {}
            while time.perf_counter() - posted_at < drain:
                statuses = await db.statuses()
                if statuses.get("processed", 0) + statuses.get("failed", 0) >= load["accepted"]:
                    break
                await asyncio.sleep(0.5)
            drained_in = time.perf_counter() - posted_at
        finally:
            await server.astop()
            await db.close()

    held = load["requests"] / load["seconds"] if load["seconds"] else 0.0
    processed = statuses.get("processed", 0)
    lost = load["accepted"] - processed
    report = {
        "database": db.kind,
        "rate_target": rate,
        "rate_held": held,
        "duration_s": load["seconds"],
        "requests": load["requests"],
        "errors": load["errors"],
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "max_ms": load["max_ms"],
        "acknowledged": load["accepted"],
        "processed": processed,
        "failed": statuses.get("failed", 0),
        "not_processed": lost,
        "drained_in_s": drained_in,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak-latest.json").write_text(json.dumps(report, indent=2))
    print(
        f"soak: held {held:.1f}/s of {rate:.0f}/s for {load['seconds']:.0f} s, "
        f"{load['requests']} requests, {load['errors']} errors, p50 {load['p50_ms']:.1f} ms, "
        f"p99 {load['p99_ms']:.1f} ms; acknowledged {load['accepted']}, processed {processed}, "
        f"failed {report['failed']}, not processed {lost} (drained {drained_in:.1f} s after)"
    )
    ok = load["errors"] == 0 and lost == 0 and held >= 0.95 * rate
    print("soak: PASSED" if ok else "soak: FAILED")
    return 0 if ok else 1


def main() -> int:
    try:
        return asyncio.run(
            soak(
                database_url=os.environ.get("SOAK_DATABASE_URL") or None,
                rate=float(os.environ.get("SOAK_RATE", "50")),
                duration=float(os.environ.get("SOAK_DURATION", "120")),
                drain=float(os.environ.get("SOAK_DRAIN_TIMEOUT", "300")),
            )
        )
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
