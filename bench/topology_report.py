"""The table rows of the drain (four topologies, CPU per email) and latency phases."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.phases import Options

Add = Callable[..., None]
Check = Callable[[float], Callable[[float], bool]]

LABELS = {
    "inline": "in-process worker (WORKER_PROCESSES=0)",
    "default": "default: 1 worker child of the app",
    "workers_1": "ack-only API + 1 kave worker",
    "workers_2": "ack-only API + 2 kave workers",
}


def _ratio(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> list[float]:
    return [x[key] / y[key] for x, y in zip(a, b, strict=False) if y[key]]


def topology_rows(
    results: dict[str, Any],
    opts: Options,
    heading: Callable[[str], None],
    add: Add,
    at_least: Check,
    at_most: Check,
) -> None:
    drain = results.get("drain")
    if drain:
        heading(f"Drain: {opts.drain_emails} emails, {opts.drain_connections} connections")
        for name, label in LABELS.items():
            runs = drain.get(name) or []
            if not runs:
                continue
            add(
                f"drain_{name}_rate",
                f"drain, {label}",
                [r["rate"] for r in runs],
                "emails/s",
                digits=0,
            )
            add(
                f"drain_{name}_post_rate",
                "  posting rate meanwhile",
                [r["posting"]["rate"] for r in runs],
                "req/s",
                digits=0,
            )
            add(
                f"drain_{name}_probe_p99_ms",
                f"  ack p99 during the posting (probe {opts.probe_rate:g}/s)",
                [r["probe"]["p99_ms"] for r in runs],
                "ms",
                **({"target": "<= 100 ms", "check": at_most(100)} if name == "default" else {}),
            )
            add(
                f"drain_{name}_probe_n",
                "  probe requests",
                [r["probe"]["requests"] for r in runs],
                digits=0,
            )
            add(
                f"drain_{name}_cpu_ms",
                "  CPU of the processing processes per email",
                [r["cpu_ms_per_email"] for r in runs],
                "ms",
                digits=2,
            )
            for key, label in (
                ("processing_cores", "the processing processes"),
                ("machine_busy_cores", "whole machine (API, database, load generator too)"),
            ):
                add(
                    f"drain_{name}_{key}",
                    f"  cores busy: {label}",
                    [r.get(key, float("nan")) for r in runs],
                    "cores",
                    digits=2,
                )
            add(
                f"drain_{name}_not_processed",
                "  errors + events not processed",
                [r["not_processed"] + r["posting"]["errors"] + r["probe"]["errors"] for r in runs],
                digits=0,
            )
        if drain.get("workers_2") and drain.get("inline"):
            add(
                "ratio_drain_workers2",
                "2 kave workers / in-process drain",
                _ratio(drain["workers_2"], drain["inline"], "rate"),
                "x",
                target=">= 1.6x",
                check=at_least(1.6),
                digits=2,
            )
        floor = drain.get("floor") or []
        add(
            "parse_floor_ms",
            "stdlib parse of the message (floor)",
            [f["parse_ms"] for f in floor],
            "ms",
            digits=2,
        )
        if drain.get("workers_1") and floor:
            ratios = [
                r["cpu_ms_per_email"] / f["parse_ms"]
                for r, f in zip(drain["workers_1"], floor, strict=False)
                if f["parse_ms"]
            ]
            add(
                "ratio_cpu_floor",
                "worker CPU per email / parse floor",
                ratios,
                "x",
                target="<= 1.3x",
                check=at_most(1.3),
                digits=2,
            )
    latency = results.get("latency")
    if latency:
        heading(f"200 -> processed at low load ({opts.latency_emails} emails, one per ~100 ms)")
        for name in ("workers_1", "default"):
            runs = latency.get(name) or []
            if runs:
                add(
                    f"latency_{name}_p50_ms",
                    f"p50, {LABELS[name]}",
                    [r["p50_ms"] for r in runs],
                    "ms",
                    target="< 100 ms",
                    check=lambda v: v < 100,
                )
                add(
                    f"latency_{name}_p99_ms",
                    f"p99, {LABELS[name]}",
                    [r["p99_ms"] for r in runs],
                    "ms",
                )
