"""Documents' own Prometheus metrics (served at /metrics with the shared ones)."""

from prometheus_client import Counter, Histogram

RENDERED = Counter("documents_rendered_total", "Document versions finished", ["kind", "outcome"])
RENDER_SECONDS = Histogram(
    "documents_render_seconds", "Time to render one PDF in the process pool", ["kind"],
    buckets=(0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)  # fmt: skip
