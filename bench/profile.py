"""Aggregate a `py-spy record -f raw [--threads]` file: self time per leaf function, cumulative
time per function, self time per package, for the event-loop thread (the one running uvicorn)
and per thread. `python -m bench.profile FILE` prints the tables.

Native code called from Python shows as self time of its caller: uvloop's loop and httptools'
parser (Cython/C) appear as `Runner.run (asyncio/runners.py)`.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _split(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    return match["func"], match["file"]


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker.startswith("/lib") else tail
    if "/work/main/" in path:
        return path.split("/work/main/", 1)[1]
    return path


def _package(path: str) -> str:
    short = _short(path)
    if "site-packages/" in path:
        return short.split("/", 1)[0].removesuffix(".py")
    if "/lib/python3" in path:
        return "stdlib:" + short.split("/", 1)[0].removesuffix(".py")
    parts = short.split("/")
    if parts[0] == "app" and len(parts) > 1:
        return "app/" + parts[1].removesuffix(".py")
    return parts[0]


def _stacks(path: Path) -> list[tuple[str, list[str], int]]:
    """(thread, frames, count) per line; thread is "" without --threads."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if f]
        thread = ""
        if frames and frames[0].startswith(("thread (", "process ")):
            thread = frames.pop(0)
        while frames and frames[0].startswith(("thread (", "process ")):
            thread = frames.pop(0)
        if frames:
            out.append((thread, frames, int(count)))
    return out


def aggregate(path: Path) -> dict[str, Any]:
    """Tables for the thread that runs uvicorn, plus the sample count of every thread."""
    stacks = _stacks(path)
    threads: Counter[str] = Counter()
    loop_threads: Counter[str] = Counter()
    for thread, frames, n in stacks:
        threads[thread] += n
        if any("uvicorn/" in f for f in frames):
            loop_threads[thread] += n
    main = loop_threads.most_common(1)[0][0] if loop_threads else ""
    result = _tables([(f, n) for t, f, n in stacks if t == main])
    result["thread"] = main
    result["all_samples"] = sum(threads.values())
    result["threads"] = threads.most_common()
    return result


def _tables(stacks: list[tuple[list[str], int]]) -> dict[str, Any]:
    self_time: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for raw_frames, n in stacks:
        total += n
        frames = [_split(f) for f in raw_frames]
        names = [f"{func} ({_short(file)})" for func, file in frames]
        self_time[names[-1]] += n
        packages[_package(frames[-1][1])] += n
        for name in set(names):
            cumulative[name] += n
    return {
        "samples": total,
        "self": self_time.most_common(),
        "cumulative": cumulative.most_common(),
        "packages": packages.most_common(),
    }


def render(agg: dict[str, Any], top: int = 25) -> str:
    total = agg["samples"] or 1
    out = [f"py-spy samples (non-idle), all threads: {agg['all_samples']}"]
    for thread, count in agg["threads"]:
        out.append(f"  {count:7d}  {thread or '(no thread ids)'}")
    out.append(f"Tables below: the event-loop thread {agg['thread']}, {agg['samples']} samples")
    for title, key, n in (
        ("Self time by package (leaf frame)", "packages", top),
        ("Self time by function (leaf frame)", "self", top),
        ("Cumulative time by function", "cumulative", top + 15),
    ):
        out.append(f"\n{title}")
        for name, count in agg[key][:n]:
            out.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(out)


if __name__ == "__main__":
    print(render(aggregate(Path(sys.argv[1])), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
