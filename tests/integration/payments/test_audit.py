"""The pay page is an actor of its own in the audit trail: a payment made there stages an
AuditRecorded (role and actor `pay_page`, the requester's address) with the payment."""

import json

import pytest

from shared import topics
from tests.conftest import read_topic
from tests.integration.payments.conftest import payment_method
from tests.integration.payments.test_public_pay import published_bill

pytestmark = pytest.mark.integration


async def test_a_pay_page_payment_is_audited_as_the_pay_page(svc, http, publish) -> None:
    practice, client, _, number = await published_bill(svc, publish, "271828")
    body = {"bill_number": number, "access_code": "271828", "amount_cents": 2000,
            "stripe_payment_method_id": await payment_method(svc.settings)}  # fmt: skip
    r = await http.post("/v1/public/pay", json=body)
    assert r.status_code == 201, r.text

    def audits(records: list) -> list[dict]:
        events = [json.loads(x.value) for x in records if x.key == client.encode()]
        return [e for e in events if e["event_type"] == "AuditRecorded" and e["practice_id"] == practice]

    [audit] = audits(await read_topic(svc.settings, topics.PAYMENTS, until=lambda rs: bool(audits(rs))))
    assert audit["data"] == {
        "actor": "pay_page", "role": "pay_page", "service": "payments", "action": "pay_page_payment",
        "resource": {"kind": "payment", "id": r.json()["id"]}, "client_id": client, "ip": "127.0.0.1",
    }  # fmt: skip
