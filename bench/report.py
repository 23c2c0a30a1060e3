"""Medians, the targets, the printed table, machine info and the JSON file."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.db import ROOT

PACKAGES = (
    "uvicorn",
    "uvloop",
    "httptools",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "orjson",
    "python-multipart",
    "structlog",
)


def summary(values: Sequence[float]) -> dict[str, Any]:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0, "values": []}
    return {
        "median": statistics.median(clean),
        "min": min(clean),
        "max": max(clean),
        "n": len(clean),
        "values": list(clean),
    }


@dataclass
class Row:
    label: str
    stat: dict[str, Any] | None  # from summary(); None for a section heading
    unit: str = ""
    target: str = ""
    check: Callable[[float], bool] | None = None
    digits: int = 1

    @property
    def met(self) -> str:
        if self.check is None or self.stat is None or not self.stat["n"]:
            return ""
        return "met" if self.check(self.stat["median"]) else "NOT MET"


def _fmt(value: float, digits: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def render(rows: list[Row], title: str) -> str:
    header = ("Figure", "Median", "Min", "Max", "Unit", "Target", "Met")
    table: list[tuple[str, ...]] = []
    for row in rows:
        if row.stat is None:
            table.append((row.label, "", "", "", "", "", ""))
            continue
        s = row.stat
        table.append(
            (
                "  " + row.label,
                _fmt(s["median"], row.digits),
                _fmt(s["min"], row.digits) if s["n"] > 1 else "",
                _fmt(s["max"], row.digits) if s["n"] > 1 else "",
                row.unit,
                row.target,
                row.met,
            )
        )
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        out = [cells[0].ljust(widths[0])]
        out += [cells[i].rjust(widths[i]) for i in (1, 2, 3)]
        out += [cells[i].ljust(widths[i]) for i in (4, 5, 6)]
        return "  ".join(out).rstrip()

    rule = "-" * len(line(header))
    return "\n".join([title, rule, line(header), rule, *map(line, table), rule])


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_mib() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def _run(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).strip()


def machine_info(wrk: str | None, database: str) -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_mib": _mem_total_mib(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "database": database,
        "load_generator": _run([wrk, "-v"]).splitlines()[0] if wrk else "httpx (fallback)",
        "packages": versions,
        "git_commit": _run(["git", "rev-parse", "HEAD"]),
        "git_dirty": bool(_run(["git", "status", "--porcelain", "--untracked-files=no"])),
        "loadavg": os.getloadavg(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)

    def default(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, set | tuple):
            return list(value)
        return str(value)

    text = json.dumps(data, indent=2, default=default, allow_nan=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)
