"""A session split between two parents, through the contract with the services as processes and
the real SMTP sink: each parent gets an email of their own, to their own address only, carrying
their own bill's number, access code and pay link and a PDF that names them as the responsible
party and their share; nothing of the other parent's bill."""

import subprocess
import uuid
from email.message import Message

import pytest

from shared import topics
from tests.conftest import eventually, example_event
from tests.e2e.test_slice import pdf_attachments

pytestmark = pytest.mark.e2e


def text_of(message: Message) -> str:
    return "".join(
        part.get_payload(decode=True).decode() for part in message.walk() if part.get_content_type() == "text/plain"
    )


def pdf_text(pdf: bytes) -> str:
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    return done.stdout.decode()


async def test_each_party_of_a_split_bill_gets_their_own_email_pay_link_and_pdf(
    stack, publish, http, staff_headers
) -> None:
    suffix = uuid.uuid4().hex[:8]
    cid, sid = f"client-split-{suffix}", f"sess-split-{suffix}"
    mother = {"id": f"g-m-{suffix}", "name": "Grace Park", "email": f"grace.{suffix}@example.com",
              "relationship": "mother", "is_billing_contact": True}  # fmt: skip
    father = {"id": f"g-f-{suffix}", "name": "Daniel Park", "email": f"daniel.{suffix}@example.com",
              "relationship": "father", "is_billing_contact": False}  # fmt: skip
    client = example_event("ClientUpserted-minor")
    client["data"]["client"].update(id=cid, guardians=[mother, father])
    session = example_event("SessionCompleted-self-pay")
    session["data"]["session"].update(id=sid, client_id=cid)
    await publish(topics.SCHEDULING, example_event("ClinicianUpserted"), key="clin-morgan")
    await publish(topics.SCHEDULING, client, key=cid)
    await publish(topics.SCHEDULING, session, key=cid)
    billing = stack.url("billing")

    async def unbilled() -> list[str]:
        r = await http.get(f"{billing}/v1/unbilled-sessions", params={"client_id": cid}, headers=staff_headers)
        return [i["session_id"] for i in r.json()["items"]]

    await eventually(unbilled, timeout=60)
    split = [{"party": f"guardian:{mother['id']}", "percent": 60}, {"party": f"guardian:{father['id']}", "percent": 40}]
    r = await http.post(
        f"{billing}/v1/bills", json={"client_id": cid, "session_ids": [sid], "split": split}, headers=staff_headers
    )
    assert r.status_code == 201, r.text
    bills = r.json()["items"]
    assert [b["total_cents"] for b in bills] == [9600, 6400]  # 16000 split 60/40
    for bill in bills:
        r = await http.post(f"{billing}/v1/bills/{bill['id']}/share", json={}, headers=staff_headers)
        assert r.status_code in (200, 202), r.text

    practice = client["practice_id"]
    for bill, party, other_bill, other in ((bills[0], mother, bills[1], father), (bills[1], father, bills[0], mother)):
        [message] = await eventually(lambda a=party["email"]: stack.inbox.to(a), timeout=90)
        assert message["X-Envelope-To"] == party["email"], "one email per party, to that party alone"
        assert other["email"] not in (message["To"] or "") + (message["Cc"] or "")
        assert f"#{bill['number']}" in message["Subject"]
        text = text_of(message)
        assert f"/pay?practice={practice}&bill={bill['number']}" in text
        assert bill["access_code"] in text
        assert f"bill={other_bill['number']}" not in text and other_bill["access_code"] not in text
        [pdf] = pdf_attachments(message)
        printed = pdf_text(pdf)
        assert party["name"] in printed and "Noah Park" in printed  # the party responsible, the client as patient
        assert bill["access_code"] in printed and other_bill["access_code"] not in printed
        assert f"${bill['total_cents'] // 100:,}.00" in printed and other["name"] not in printed

    r = await http.get(f"{stack.url('notifications')}/v1/emails", params={"client_id": cid}, headers=staff_headers)
    log = r.json()["items"]
    assert sorted(e["to"] for e in log if e["status"] == "sent") == sorted([mother["email"], father["email"]])
