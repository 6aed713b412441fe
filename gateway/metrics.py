"""Prometheus metrics of the gateway, in a registry of its own (one per composition root).

Names follow the Prometheus conventions (``_total`` counters, base units). Outbox depth and age
are read from the database when ``/metrics`` is scraped, so every replica reports the shared
truth rather than its own view.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Every metric the gateway exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.data_key = Gauge(
            "lapor_data_key_info",
            "1, labelled with the fingerprint of the data key this process seals with (as"
            " check-config prints it): replicas with different ones cannot open each other's"
            " events.",
            ["fingerprint"],
            registry=r,
        )
        self.accepted = Counter(
            "lapor_intake_accepted", "Complaints created.", ["channel"], registry=r
        )
        self.quarantined = Counter(
            "lapor_intake_quarantined", "Messages stored but not parsed.", ["channel"], registry=r
        )
        self.duplicates = Counter(
            "lapor_intake_duplicates",
            "Messages recognised as already seen, by dedup tier.",
            ["channel", "tier"],
            registry=r,
        )
        self.followups = Counter(
            "lapor_intake_followups",
            "Messages added to the complaint they name, whose tracking ID their sender holds.",
            ["channel"],
            registry=r,
        )
        self.recorded = Counter(
            "lapor_intake_recorded",
            "Messages stored that are not complaints (status queries, help...).",
            ["channel", "reason"],
            registry=r,
        )
        self.unavailable = Counter(
            "lapor_intake_unavailable",
            "Messages refused with a retry signal because the database could not commit.",
            ["channel"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "lapor_outbox_depth", "Events waiting for publication.", ["channel"], registry=r
        )
        self.outbox_oldest_age = Gauge(
            "lapor_outbox_oldest_age_seconds",
            "Age of the oldest event waiting for publication.",
            ["channel"],
            registry=r,
        )
        self.published = Counter(
            "lapor_outbox_published", "Events confirmed by the broker.", ["channel"], registry=r
        )
        self.publish_latency = Histogram(
            "lapor_outbox_publish_latency_seconds",
            "From the intake commit to the broker's confirm.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
            registry=r,
        )
        self.relay_errors = Counter(
            "lapor_outbox_relay_errors",
            "Relay failures (broker unreachable, nack, unroutable, database, data key).",
            ["reason"],
            registry=r,
        )
        self.prune_runs = Counter(
            "lapor_outbox_prune_runs",
            "Runs of the pruning of published events in this process, by outcome (ok, failed).",
            ["outcome"],
            registry=r,
        )
        self.pruned = Counter(
            "lapor_outbox_pruned",
            "Published events deleted once older than outbox.keep_published.",
            registry=r,
        )
        self.broker_connected = Gauge(
            "lapor_outbox_broker_connected",
            "1 while this relay holds a broker channel.",
            registry=r,
        )
        self.http_responses = Counter(
            "lapor_http_responses",
            "HTTP answers by surface (form, api, open311, sms, staff, ops, other), method and"
            " status code.",
            ["surface", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "lapor_http_request_duration_seconds",
            "From the request's arrival in the handler to its answer, by surface.",
            ["surface"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.gc_runs = Counter(
            "lapor_files_gc_runs",
            "Runs of the file store's garbage collection in this process, by outcome (ok, failed).",
            ["outcome"],
            registry=r,
        )
        self.gc_deleted = Counter(
            "lapor_files_gc_deleted",
            "Files (and leftover temporaries) the garbage collection deleted.",
            registry=r,
        )
        self.gc_freed = Counter(
            "lapor_files_gc_freed_bytes", "Bytes the garbage collection freed.", registry=r
        )
        self.status_changes = Counter(
            "lapor_status_changes",
            "Status messages from the routing core, by outcome: applied, stale (older than the"
            " complaint's status; kept, not shown), duplicate (a redelivery), refused (invalid or"
            " of an unknown complaint: dead-lettered).",
            ["outcome"],
            registry=r,
        )
        self.status_feed_enabled = Gauge(
            "lapor_status_feed_enabled",
            "1 when this process runs the status feed (status_feed.enabled).",
            registry=r,
        )
        self.status_feed_connected = Gauge(
            "lapor_status_feed_connected",
            "1 while this process consumes the routing core's status queue.",
            registry=r,
        )
