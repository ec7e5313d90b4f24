"""Topic names from CONTRACT.md; each service publishes only to its own."""

SCHEDULING = "scheduling.events"
BILLING = "billing.events"
PAYMENTS = "payments.events"
DOCUMENTS = "documents.events"
NOTIFICATIONS = "notifications.events"
PORTAL = "portal.notifications"

ALL = (SCHEDULING, BILLING, PAYMENTS, DOCUMENTS, NOTIFICATIONS, PORTAL)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"
