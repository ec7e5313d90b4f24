"""Prometheus metrics of the email sender (served at /metrics with the shared ones)."""

from prometheus_client import Counter, Histogram

EMAIL_ATTEMPTS = Counter(
    "notification_email_attempts_total", "Email send attempts by outcome", ["kind", "outcome"]
)  # outcome: sent | retry | failed | portal_only
EMAIL_SEND_SECONDS = Histogram("notification_email_send_seconds", "Time to fetch the PDF and hand the email to SMTP")
