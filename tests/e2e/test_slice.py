"""The foundation slice through the contract only, four services as processes:
session → unbilled → bill → PDF → share → email with PDF + portal notification → cash payment
→ bill paid. Redelivered events change nothing twice; a crashed service loses nothing."""

import uuid
from email.message import Message
from typing import Any

import pytest

from shared import topics
from tests.conftest import committed_offset, eventually, example_event, read_topic

pytestmark = pytest.mark.e2e


def upstream_events(suffix: str) -> dict[str, dict[str, Any]]:
    """Contract examples with ids of this test's own."""
    client = example_event("ClientUpserted-adult")
    client["data"]["client"].update(id=f"client-{suffix}", email=f"jamie.{suffix}@example.com")
    clinician = example_event("ClinicianUpserted")
    session = example_event("SessionCompleted-self-pay")
    session["data"]["session"].update(id=f"sess-{suffix}", client_id=f"client-{suffix}")
    return {"client": client, "clinician": clinician, "session": session}


async def unbilled(http, stack, headers, client_id: str) -> list[dict[str, Any]]:
    r = await http.get(f"{stack.url('billing')}/v1/unbilled-sessions", params={"client_id": client_id}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def bill_emails(stack, address: str) -> list[Message]:
    return [m for m in stack.inbox.to(address) if m["Subject"].startswith("Your bill #")]


def pdf_attachments(msg: Message) -> list[bytes]:
    return [part.get_payload(decode=True) for part in msg.walk() if part.get_content_type() == "application/pdf"]


async def test_session_to_paid_bill_through_all_four_services(stack, publish, http, staff_headers) -> None:
    suffix = uuid.uuid4().hex[:8]
    ev = upstream_events(suffix)
    client_id = f"client-{suffix}"
    address = f"jamie.{suffix}@example.com"
    await publish(topics.SCHEDULING, ev["clinician"], key="clin-morgan")
    await publish(topics.SCHEDULING, ev["client"], key=client_id)
    await publish(topics.SCHEDULING, ev["session"], key=client_id)
    await publish(topics.SCHEDULING, ev["session"], key=client_id)  # redelivery

    items = await eventually(lambda: unbilled(http, stack, staff_headers, client_id))
    assert len(items) == 1
    assert items[0]["session_id"] == f"sess-{suffix}"
    assert items[0]["amount_cents"] == 16000

    r = await http.post(
        f"{stack.url('billing')}/v1/bills",
        json={"client_id": client_id, "session_ids": [f"sess-{suffix}"], "responsibility": "client"},
        headers=staff_headers,
    )
    assert r.status_code == 201, r.text
    bill = r.json()
    assert bill["status"] == "open"
    assert bill["total_cents"] == bill["balance_cents"] == 16000
    assert await unbilled(http, stack, staff_headers, client_id) == []

    async def rendered() -> str | None:
        r = await http.get(f"{stack.url('billing')}/v1/bills/{bill['id']}", headers=staff_headers)
        return r.json().get("document_id")

    document_id = await eventually(rendered)
    r = await http.get(f"{stack.url('documents')}/v1/documents/{document_id}/pdf", headers=staff_headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")

    r = await http.post(f"{stack.url('billing')}/v1/bills/{bill['id']}/share", json={}, headers=staff_headers)
    assert r.status_code in (200, 202), r.text
    [message] = await eventually(lambda: bill_emails(stack, address))
    assert str(bill["number"]) in message["Subject"]
    assert len(pdf_attachments(message)) == 1
    assert pdf_attachments(message)[0].startswith(b"%PDF")
    text = "".join(
        part.get_payload(decode=True).decode() for part in message.walk() if part.get_content_type() == "text/plain"
    )
    assert f"/pay?practice={ev['client']['practice_id']}&bill={bill['number']}" in text

    portal = await read_topic(
        stack.settings,
        topics.PORTAL,
        until=lambda rs: any(client_id.encode() in r.value for r in rs),
    )
    mine = [r for r in portal if client_id.encode() in r.value]
    assert len(mine) == 1 and b'"bill_shared"' in mine[0].value

    r = await http.post(
        f"{stack.url('payments')}/v1/payments",
        json={
            "client_id": client_id,
            "bill_id": bill["id"],
            "payer": "client",
            "method": "cash",
            "amount_cents": 16000,
        },
        headers=staff_headers,
    )
    assert r.status_code == 201, r.text

    async def paid() -> dict[str, Any] | None:
        r = await http.get(f"{stack.url('billing')}/v1/bills/{bill['id']}", headers=staff_headers)
        body = r.json()
        return body if body["status"] == "paid" else None

    final = await eventually(paid)
    assert final["balance_cents"] == 0 and final["paid_cents"] == 16000

    # The share event redelivered: once notifications has committed past it, still one email.
    def is_share(record) -> bool:
        return b'"BillShared"' in record.value and bill["id"].encode() in record.value

    billing_events = await read_topic(stack.settings, topics.BILLING, until=lambda rs: any(map(is_share, rs)))
    share_record = next(filter(is_share, billing_events))
    again = await publish(topics.BILLING, share_record.value, key=client_id)
    await eventually(
        lambda: _past(committed_offset(stack.settings, "notifications", topics.BILLING, again.partition), again.offset)
    )
    # Committed means its transaction is done: a duplicate would be in the delivery log now.
    r = await http.get(
        f"{stack.url('notifications')}/v1/emails", params={"client_id": client_id}, headers=staff_headers
    )
    assert r.status_code == 200
    assert [e["kind"] for e in r.json()["items"]].count("bill_shared") == 1
    assert len(bill_emails(stack, address)) == 1
    receipts = await eventually(lambda: [m for m in stack.inbox.to(address) if "Receipt" in m["Subject"]])
    assert len(receipts) == 1 and "$160.00" in receipts[0]["Subject"]
    assert [e["status"] for e in r.json()["items"] if e["kind"] == "bill_shared"] == ["sent"]


async def _past(offset, target: int) -> bool:
    return await offset > target
