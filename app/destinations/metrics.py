"""Prometheus figures of the outlet, per destination (labelled by destination id)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SENT = Counter(
    "kave_notifications_sent_total", "Notifications delivered (a 2xx answer)", ["destination"]
)
FAILED = Counter(
    "kave_notifications_failed_total",
    "Notifications given up on (schedule used up, or 410 Gone)",
    ["destination"],
)
ATTEMPTS = Counter(
    "kave_notification_attempts_total",
    "Delivery attempts by outcome (delivered, retry, gone)",
    ["destination", "outcome"],
)
LATENCY = Histogram(
    "kave_notification_latency_seconds",
    "Time from sending a notification to its answer",
    ["destination"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PENDING = Gauge(
    "kave_notifications_pending",
    "Notifications pending or being sent (refreshed by the dispatcher)",
    ["destination"],
)
OLDEST_PENDING_AGE = Gauge(
    "kave_notifications_oldest_pending_age_seconds",
    "Age of the oldest notification still pending or being sent (0: none)",
    ["destination"],
)
FAILING = Gauge(
    "kave_destination_failing",
    "1 while a destination's recent attempts keep failing",
    ["destination"],
)
