"""Prometheus metrics of the SMS channel, registered on the gateway's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class SmsMetrics:
    """Replies, delivery reports, fragments and ignored requests."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.replies = Counter(
            "lapor_sms_replies",
            "Replies by bridge and outcome (queued, inline, suppressed, sent, retry, failed).",
            ["bridge", "outcome"],
            registry=r,
        )
        self.suppressed = Counter(
            "lapor_sms_replies_suppressed",
            "Replies recorded but not sent, by reason (flood, no-sender).",
            ["reason"],
            registry=r,
        )
        self.reply_latency = Histogram(
            "lapor_sms_reply_latency_seconds",
            "From the reply's creation to the bridge accepting it.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
            registry=r,
        )
        self.reports = Counter(
            "lapor_sms_delivery_reports",
            "Delivery reports by bridge and state (unmatched: no reply found).",
            ["bridge", "state"],
            registry=r,
        )
        self.fragments = Counter(
            "lapor_sms_fragments",
            "Fragments held and sets joined (held, joined, joined_incomplete).",
            ["outcome"],
            registry=r,
        )
        self.ignored = Counter(
            "lapor_sms_ignored",
            "Requests answered without storing anything, by bridge and reason.",
            ["bridge", "reason"],
            registry=r,
        )
