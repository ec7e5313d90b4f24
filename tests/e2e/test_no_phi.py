"""No PHI in logs or DLQ headers: a flow with a distinctive client name and email through the
four services as processes (bill, PDF, email, cash payment), plus events that fail (a NUL in
the name, an invalid date of birth), then every log line the services wrote during the run and
every DLQ header of the run are searched for the name and the email: 0 hits."""

import uuid
from typing import Any

import pytest

from shared import topics
from tests.conftest import eventually, example_event, read_topic
from tests.processes import LOGS

pytestmark = pytest.mark.e2e


def client_event(client_id: str, first: str, last: str, email: str, **extra: Any) -> dict[str, Any]:
    event = example_event("ClientUpserted-adult")
    event["data"]["client"].update(id=client_id, first_name=first, last_name=last, email=email, **extra)
    return event


@pytest.mark.expect_dlq  # its poison events go to the DLQ on purpose: their headers are what it reads
@pytest.mark.expect_error_log  # and each dead letter is logged as an ERROR (its lines are read too)
async def test_names_and_emails_reach_no_log_line_and_no_dlq_header(stack, publish, http, staff_headers) -> None:
    suffix = uuid.uuid4().hex[:8]
    first, last, address = "Xanthippe", f"Quarrington{suffix}", f"xq.{suffix}@phi-probe.example"
    logs = sorted(LOGS.glob("e2e-*.log"))
    offsets = {path: path.stat().st_size for path in logs}
    client_id = f"client-{suffix}"

    session = example_event("SessionCompleted-self-pay")
    session["data"]["session"].update(id=f"sess-{suffix}", client_id=client_id)
    await publish(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin-morgan")
    await publish(topics.SCHEDULING, client_event(client_id, first, last, address), key=client_id)
    await publish(topics.SCHEDULING, session, key=client_id)
    nul = client_event(f"client-nul-{suffix}", f"{first}\x00", last, address)
    invalid = client_event(f"client-bad-{suffix}", first, last, address, date_of_birth="the day after tomorrow")
    for bad in (nul, invalid):
        await publish(topics.SCHEDULING, bad, key=bad["data"]["client"]["id"])

    billing = stack.url("billing")

    async def unbilled() -> list[dict[str, Any]]:
        r = await http.get(f"{billing}/v1/unbilled-sessions", params={"client_id": client_id}, headers=staff_headers)
        return r.json()["items"]

    await eventually(unbilled, timeout=60)
    body = {"client_id": client_id, "session_ids": [f"sess-{suffix}"], "responsibility": "client"}
    bill = (await http.post(f"{billing}/v1/bills", json=body, headers=staff_headers)).json()
    r = await http.post(f"{billing}/v1/bills/{bill['id']}/share", json={}, headers=staff_headers)
    assert r.status_code in (200, 202), r.text
    await eventually(lambda: [m for m in stack.inbox.to(address) if m["Subject"].startswith("Your bill #")], timeout=60)
    payment = {"client_id": client_id, "bill_id": bill["id"], "payer": "client", "method": "cash", "amount_cents": 500}
    r = await http.post(f"{stack.url('payments')}/v1/payments", json=payment, headers=staff_headers)
    assert r.status_code == 201, r.text
    await eventually(lambda: [m for m in stack.inbox.to(address) if "Receipt" in m["Subject"]], timeout=60)

    # billing, payments and notifications each read scheduling.events: each dead-letters both bad events
    bad_ids = {nul["event_id"], invalid["event_id"]}

    def all_dead(records: list[Any]) -> bool:
        ids = [dict(r.headers).get("event-id", b"").decode() for r in records]
        return all(ids.count(event_id) >= 3 for event_id in bad_ids)

    dead = await read_topic(stack.settings, topics.dlq(topics.SCHEDULING), until=all_dead, timeout=60)
    assert all_dead(dead)
    records = list(dead)
    for topic in topics.ALL:
        if topic != topics.SCHEDULING:
            records += await read_topic(stack.settings, topics.dlq(topic), until=lambda _: False, timeout=1)
    headers = [f"{k}: {v.decode(errors='replace')}" for r in records for k, v in r.headers]
    lines = []
    for path in sorted(LOGS.glob("e2e-*.log")):
        with path.open("rb") as f:
            f.seek(offsets.get(path, 0))
            lines += f.read().decode(errors="replace").splitlines()
    assert len(lines) > 0 and len(headers) >= 6 * 7
    for secret in (last, address, suffix + "@phi-probe"):
        assert [h for h in headers if secret in h] == []
        assert [line for line in lines if secret in line] == []
