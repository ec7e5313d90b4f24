"""The audit log in reports: AuditRecorded from every service's topic, kept append-only (the
API has no way to change it and the table refuses UPDATE and DELETE), filtered on request."""

import json
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared import topics
from shared.auth import issue_token
from shared.events import AuditRecorded, AuditResource
from tests.integration.reports.conftest import Reports
from tests.integration.reports.month import at, envelope
from tests.integration.reports.test_month import settle

PRACTICE = "practice-audit"


def audited(actor: str, service: str, action: str, kind: str, rid: str, client: str | None, when: str) -> dict:
    data = AuditRecorded(
        actor=actor,
        role="client" if actor.startswith("client") else "staff",
        service=service,
        action=action,
        resource=AuditResource(kind=kind, id=rid),
        client_id=client,
        ip="10.0.0.7",
    )
    return envelope(data, at(when), PRACTICE)


@pytest.fixture(scope="module")
async def logged(reports: Reports, kafka_producer: Any) -> tuple[Reports, list[dict[str, Any]]]:
    events = [
        (topics.BILLING, audited("alice", "billing", "create_bill", "bill", "b1", "c1", "2026-11-02T10:00:00+00:00")),
        (
            topics.PAYMENTS,
            audited("alice", "payments", "create_payment", "payment", "p1", "c1", "2026-11-02T10:05:00+00:00"),
        ),
        (
            topics.DOCUMENTS,
            audited("client:c1", "documents", "download_pdf", "document", "d1", "c1", "2026-11-03T09:00:00+00:00"),
        ),
        (
            topics.NOTIFICATIONS,
            audited("bob", "notifications", "retry_email", "email", "e1", "c2", "2026-11-04T09:00:00+00:00"),
        ),
    ]
    other = envelope(
        AuditRecorded(
            actor="mallory",
            role="staff",
            service="billing",
            action="create_bill",
            resource=AuditResource(kind="bill", id="x"),
        ),
        at("2026-11-02T11:00:00+00:00"),
        "elsewhere",
    )
    for topic, event in [*events, (topics.BILLING, other), events[0]]:  # the first one delivered twice
        headers = [("event-type", event["event_type"].encode()), ("event-id", event["event_id"].encode())]
        await kafka_producer.send_and_wait(
            reports.settings.topic(topic), json.dumps(event).encode(), key=b"k", headers=headers
        )
    await settle(reports)
    return reports, [e for _, e in events]


async def test_every_service_s_records_in_order_with_filters(logged: tuple[Reports, list[dict[str, Any]]]) -> None:
    r, events = logged
    items = (await r.get("/v1/audit", PRACTICE))["items"]
    assert [i["id"] for i in items] == [e["event_id"] for e in events]
    assert items[2] == {
        "id": events[2]["event_id"],
        "at": "2026-11-03T09:00:00+00:00",
        "actor": "client:c1",
        "role": "client",
        "service": "documents",
        "action": "download_pdf",
        "resource": {"kind": "document", "id": "d1"},
        "client_id": "c1",
        "ip": "10.0.0.7",
    }
    by_client = await r.get("/v1/audit", PRACTICE, client_id="c1")
    assert [i["action"] for i in by_client["items"]] == ["create_bill", "create_payment", "download_pdf"]
    by_actor = await r.get("/v1/audit", PRACTICE, actor="alice", **{"from": "2026-11-02T10:01:00Z", "to": "2026-11-05"})
    assert [i["action"] for i in by_actor["items"]] == ["create_payment"]
    page = await r.get("/v1/audit", PRACTICE, limit=3)
    rest = await r.get("/v1/audit", PRACTICE, limit=3, cursor=page["next_cursor"])
    assert [i["id"] for i in page["items"] + rest["items"]] == [i["id"] for i in items]


async def test_nothing_can_change_the_log(logged: tuple[Reports, list[dict[str, Any]]]) -> None:
    r, events = logged
    staff = r.staff(PRACTICE)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert (await r.http.request(method, "/v1/audit", headers=staff)).status_code == 405
        assert (await r.http.request(method, f"/v1/audit/{events[0]['event_id']}", headers=staff)).status_code in (
            404,
            405,
        )
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with r.svc.db.transaction() as session:
                await session.execute(text(statement))
    assert len((await r.get("/v1/audit", PRACTICE))["items"]) == 4


async def test_staff_of_the_practice_only(logged: tuple[Reports, list[dict[str, Any]]]) -> None:
    r, _ = logged
    client = issue_token(PRACTICE, "client", "c1", secret=r.settings.auth_secret)
    assert (await r.http.get("/v1/audit", headers={"Authorization": f"Bearer {client}"})).status_code == 403
    assert [i["actor"] for i in (await r.get("/v1/audit", "elsewhere"))["items"]] == ["mallory"]
