"""Topic names from CONTRACT.md; each service publishes only to its own."""

SCHEDULING = "scheduling.events"
BILLING = "billing.events"
PAYMENTS = "payments.events"
DOCUMENTS = "documents.events"
NOTIFICATIONS = "notifications.events"
PORTAL = "portal.notifications"

INGEST = (SCHEDULING,)
"""Where the volume arrives (every session of every practice): consumed in gathered batches."""
ALL = (SCHEDULING, BILLING, PAYMENTS, DOCUMENTS, NOTIFICATIONS, PORTAL)
# Replayed by `python -m services.reports rebuild`: kept for TOPIC_RETENTION_MS (default forever).
RETAINED = (SCHEDULING, BILLING, PAYMENTS, DOCUMENTS, NOTIFICATIONS)


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


# Who writes and who reads each topic: the Kafka ACLs are made from this (shared.kafka_acls).
# A consumer also writes the DLQ of each topic it reads.
WRITES = {
    "scheduling": (SCHEDULING,),
    "billing": (BILLING,),
    "payments": (PAYMENTS,),
    "documents": (DOCUMENTS,),
    "notifications": (NOTIFICATIONS, PORTAL),
    "reports": (),
}
READS = {
    "billing": (SCHEDULING, PAYMENTS, DOCUMENTS),
    "payments": (BILLING, SCHEDULING),
    "documents": (BILLING,),
    "notifications": (BILLING, DOCUMENTS, PAYMENTS, SCHEDULING),
    "reports": (SCHEDULING, BILLING, PAYMENTS, DOCUMENTS, NOTIFICATIONS),
}
