"""Prometheus metrics shared by all services (served at /metrics)."""

from prometheus_client import Counter, Histogram

EVENTS_CONSUMED = Counter("events_consumed_total", "Events handled by a consumer", ["service", "event_type", "outcome"])
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Outbox rows published", ["service"])
OUTBOX_PARKED = Counter("outbox_parked_total", "Outbox rows set aside: too large for Kafka", ["service"])
DEAD_LETTERED = Counter("events_dead_lettered_total", "Messages sent to a DLQ", ["service", "topic"])
HTTP_LATENCY = Histogram("http_request_seconds", "HTTP request latency", ["service", "method", "route", "status"])
