"""Prometheus metrics of the letter desk, registered on the gateway's own registry.

The reader counts what becomes of each letter it reads; the backlog (letters by status, and how
long the oldest unread one has waited) is read from the shared database when ``/metrics`` is
scraped, so every replica reports the same truth (alerts take it with ``max``).
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# What the reader does with a letter it claimed.
READ, UNREADABLE, FAILED, GIVEN_UP, LEASE_LOST = (
    "read", "unreadable", "failed", "given_up", "lease_lost"
)
# The statuses the backlog gauge reports (confirmed letters are history, not backlog).
BACKLOG_STATUSES = ("reading", "ready", "failed")


class LetterMetrics:
    """Letters read, by outcome; reading time; the backlog."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.reads = Counter(
            "lapor_letter_reads",
            "Letters the OCR reader finished, by outcome (read, unreadable, failed, given_up,"
            " lease_lost).",
            ["outcome"],
            registry=r,
        )
        self.read_seconds = Histogram(
            "lapor_letter_read_seconds",
            "Time to read one letter (every page's OCR and the fields).",
            buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.drafts = Gauge(
            "lapor_letter_drafts",
            "Uploaded letters not yet confirmed, by status (reading, ready, failed).",
            ["status"],
            registry=r,
        )
        self.oldest_waiting = Gauge(
            "lapor_letter_oldest_waiting_seconds",
            "How long the oldest letter waiting to be read has waited (0 when none waits).",
            registry=r,
        )

    def backlog(
        self, counts: dict[str, int], waiting_since: datetime | None, now: datetime
    ) -> None:
        """Set the backlog gauges from the database's counts."""
        for status in BACKLOG_STATUSES:
            self.drafts.labels(status).set(counts.get(status, 0))
        age = 0.0 if waiting_since is None else (now - waiting_since).total_seconds()
        self.oldest_waiting.set(max(0.0, age))
