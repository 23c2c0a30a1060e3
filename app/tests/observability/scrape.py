"""Read a Prometheus text exposition into sample values (shared with the fault tests)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (sample.name, dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
        return sum(
            value
            for sample_name, sample_labels, value in self.samples
            if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())
        )

    def value(self, name: str) -> float:
        """The one unlabelled sample of a gauge."""
        values = [value for sample_name, _, value in self.samples if sample_name == name]
        assert len(values) == 1, f"{name}: {values}"
        return values[0]

    def label_values(self, name: str, label: str) -> set[str]:
        return {
            labels[label]
            for sample_name, labels, _ in self.samples
            if sample_name == name and label in labels
        }

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        return self.total(name, **labels) - before.total(name, **labels)

    def summary(self) -> str:
        """A one-line digest of the pipeline counters, for the fault tests' reports."""
        outcomes = sorted(self.label_values("kave_event_tasks_total", "outcome"))
        tasks = ", ".join(
            f"{o}={self.total('kave_event_tasks_total', outcome=o):.0f}" for o in outcomes
        )
        return (
            f"stored={self.total('kave_events_stored_total'):.0f} "
            f"duplicates={self.total('kave_events_duplicate_total'):.0f} "
            f"processed={self.total('kave_events_processed_total'):.0f} "
            f"failed={self.total('kave_events_failed_total'):.0f} tasks[{tasks}]"
        )
