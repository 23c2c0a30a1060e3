"""The app's /metrics with its worker children's figures merged in (the default topology).

A child counts what it processes in its own process, and serves it on its loopback health
port. The app's scrape reads each child's and adds its series to the same families with a
`process="worker-N"` label, so one scrape of the app still shows the whole processing (sum
over `process`); the children's backlog gauges are left out (the app reads the same table).
Separate `kave worker` processes are scraped on their own port, told apart by `instance`.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

CHILD_SCRAPE_TIMEOUT_SECONDS = 2.0


def _fetch(url: str, authorization: str | None) -> str:
    request = urllib.request.Request(f"{url}/metrics")  # noqa: S310 (our child, on loopback)
    if authorization:
        request.add_header("Authorization", authorization)
    with urllib.request.urlopen(request, timeout=CHILD_SCRAPE_TIMEOUT_SECONDS) as response:  # noqa: S310
        return str(response.read().decode("utf-8"))


async def scrape_children(urls: Sequence[str], authorization: str | None) -> list[str | None]:
    async def one(url: str) -> str | None:
        try:
            return await asyncio.to_thread(_fetch, url, authorization)
        except OSError:
            return None  # restarting, or not up yet: this scrape shows the app alone

    return list(await asyncio.gather(*(one(url) for url in urls)))


class _Merged:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def merged_exposition(children: Sequence[str | None], skip: set[str]) -> bytes:
    """This process's registry plus each child's series, labelled `process="worker-N"`."""
    families = {family.name: family for family in REGISTRY.collect()}
    for index, text in enumerate(children):
        if text is None:
            continue
        for child_family in text_string_to_metric_families(text):
            if child_family.name in skip:
                continue
            family = families.setdefault(
                child_family.name,
                Metric(child_family.name, child_family.documentation, child_family.type),
            )
            family.samples.extend(
                Sample(s.name, {**s.labels, "process": f"worker-{index}"}, s.value, s.timestamp)
                for s in child_family.samples
            )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(families.values()))
    return generate_latest(registry)
