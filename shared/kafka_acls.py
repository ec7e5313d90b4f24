"""Kafka users and ACLs: each service logs in as itself and may write only its own topics (and
the DLQs of the topics it reads), read only what it consumes, in its own consumer groups.
`python -m shared.admin kafka-acls` prints them as the spec stack/kafka/KafkaSecurity.java applies."""

from shared import topics
from shared.consumer import consumer_group
from shared.settings import Settings


def acl_plan(settings: Settings) -> list[tuple[str, str, str, str, str]]:
    """(principal, resource type, pattern type, resource name, operation) for every grant."""
    plan = []
    for user, owned in topics.WRITES.items():
        principal = f"User:{user}"
        read = topics.READS.get(user, ())
        for topic in (*owned, *(topics.dlq(t) for t in read)):
            plan.append((principal, "TOPIC", "LITERAL", settings.topic(topic), "WRITE"))
        for topic in read:
            plan.append((principal, "TOPIC", "LITERAL", settings.topic(topic), "READ"))
        if read:
            group_prefix = consumer_group(settings, user, "")
            plan.append((principal, "GROUP", "PREFIXED", group_prefix, "READ"))
    return plan


def spec(settings: Settings, passwords: dict[str, str]) -> str:
    """The users (with the given passwords) and the ACLs, one per line."""
    lines = [f"user {user} {password}" for user, password in passwords.items()]
    lines += ["allow " + " ".join(grant) for grant in acl_plan(settings)]
    return "\n".join(lines) + "\n"
